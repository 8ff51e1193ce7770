"""`convert_ast_checkpoint` at the AudioSet AST's real size, offline: a randomly initialised base AST
(transformers' ASTConfig defaults: hidden 768, 12 layers, 128 mel bins x 1024 frames, strides 10; 527 labels,
weights perturbed so no parameter keeps its trivial init) is saved, converted, and the conversion's own checks
are printed: max |logits diff| and max |features diff| against AST on the conversion's test signal, and time.

    python benchmarks/convert_ast.py
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    import torch
    from transformers import ASTConfig, ASTFeatureExtractor, ASTForAudioClassification

    from audio_vit.pretrained.convert_ast import convert_ast_checkpoint

    torch.manual_seed(0)
    model = ASTForAudioClassification(ASTConfig(num_labels=527)).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.02)
    with tempfile.TemporaryDirectory() as work:
        source, output = Path(work, "ast"), Path(work, "converted")
        model.save_pretrained(source)
        ASTFeatureExtractor().save_pretrained(source)
        start = time.perf_counter()
        report = convert_ast_checkpoint(source, output)
        seconds = time.perf_counter() - start
    print(json.dumps({**vars(report), "output_dir": None, "seconds": round(seconds, 1)}, indent=2))


if __name__ == "__main__":
    main()
