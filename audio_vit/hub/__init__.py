"""Sharing model folders: Hub uploads and the Hub cache (`sharing`), model cards (`model_card`) and the tables a
card reads from its folder (`model_card_tables`).

    from audio_vit.hub import push_folder, write_model_card
"""
from .._imports import lazy_attributes

_LAZY_ATTRIBUTES = {
    **dict.fromkeys(["UPLOAD_IGNORE_PATTERNS", "check_shareable_folder", "place_in_hub_cache", "push_folder",
                     "upload_file_list"], ".sharing"),
    "write_model_card": ".model_card",
}

__all__ = sorted(_LAZY_ATTRIBUTES)

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY_ATTRIBUTES)
