"""Starting from pretrained weights (used when training starts, never shipped with a checkpoint): reading and
adapting ImageNet-style weights (`weights`), which source tensor goes where (`key_matching`), the starts found
offline (`starts`), and AST (AudioSet) checkpoints converted to audio_vit folders (`convert_ast`)."""
