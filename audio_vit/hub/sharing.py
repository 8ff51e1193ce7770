"""Sharing model folders: Hub uploads and placing a folder in the Hub cache (loading: `audio_vit.model_folder`).

`push_folder` uploads a training output folder with `create_repo` + `upload_folder`; the dry run lists the
files through the same filter (`upload_file_list`) so what it prints is exactly what would be sent.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from ..model_folder import CARD_NAME, PREPROCESSOR_NAME, ModelFolderError, find_weight_files, read_config

# Training leaves resumable state next to the final model; none of it belongs on the Hub. Patterns are
# fnmatch patterns on the path relative to the folder ("*" also matches "/"), as upload_folder applies them.
UPLOAD_IGNORE_PATTERNS = [
    "checkpoints/*",  # accelerate save_state folders (epoch_N), incl. optimizer/scheduler/RNG states
    "checkpoint-*/*",  # transformers.Trainer-style checkpoints
    "runs/*",  # tensorboard
    "logs/*",
    "tensorboard/*",
    "wandb/*",
    "mlruns/*",
    "*events.out.tfevents*",
    "*optimizer.pt",
    "*optimizer.bin",
    "*scheduler.pt",
    "*scheduler.bin",
    "*scaler.pt",
    "*rng_state*.pth",
    "*random_states_*.pkl",
    "*training_args.bin",
    "*.tmp",
    "*/.tmp-*",
    ".tmp-*",
    "*__pycache__/*",
    "*.pyc",
    "*.ipynb_checkpoints/*",
    "*.DS_Store",
]


# ----------------------------------------------------------------------------------------------
# Uploading
# ----------------------------------------------------------------------------------------------


def upload_patterns(
    allow_patterns: list[str] | None = None, ignore_patterns: list[str] | None = None
) -> tuple[list[str] | None, list[str]]:
    """The (allow, ignore) patterns both the dry run and the real upload use."""
    return (list(allow_patterns) if allow_patterns else None), UPLOAD_IGNORE_PATTERNS + list(ignore_patterns or [])


def upload_file_list(
    folder: str | os.PathLike, allow_patterns: list[str] | None = None, ignore_patterns: list[str] | None = None
) -> list[str]:
    """Relative paths `upload_folder` would send from `folder`, computed with huggingface_hub's own filter."""
    from huggingface_hub.hf_api import DEFAULT_IGNORE_PATTERNS
    from huggingface_hub.utils import filter_repo_objects

    folder = Path(folder).expanduser().resolve()
    allow, ignore = upload_patterns(allow_patterns, ignore_patterns)
    # Same listing as HfApi._prepare_upload_folder_additions: every file under the folder, sorted, posix paths.
    paths = [p.relative_to(folder).as_posix() for p in sorted(folder.glob("**/*")) if p.is_file()]
    return list(filter_repo_objects(paths, allow_patterns=allow, ignore_patterns=ignore + DEFAULT_IGNORE_PATTERNS))


def check_shareable_folder(folder: str | os.PathLike) -> list[str]:
    """Checks before an upload: loadable model files present; returns warnings (e.g. no model card)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelFolderError(f"--model {str(folder)!r} is not a folder")
    read_config(folder)
    find_weight_files(folder, allow_pickle=False)
    warnings = []
    if not (folder / PREPROCESSOR_NAME).is_file():
        warnings.append(f"no {PREPROCESSOR_NAME}: users cannot turn audio into model input or use pipeline()")
    if not (folder / CARD_NAME).is_file():
        warnings.append(f"no {CARD_NAME} model card: write one with audio_vit.hub.model_card.write_model_card")
    else:
        from .model_card import validate_model_card

        try:
            validate_model_card(folder / CARD_NAME)
        except ValueError as err:  # a hand-written card may differ from ours: the Hub still accepts it
            warnings.append(f"README.md: {err}")
    return warnings


def push_folder(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    private: bool | None = None,
    revision: str | None = None,
    commit_message: str | None = None,
    token: str | None = None,
    allow_patterns: list[str] | None = None,
    ignore_patterns: list[str] | None = None,
    api=None,
):
    """`create_repo` + `upload_folder` of a model folder; returns the `CommitInfo` (or upload result).

    The token comes from `token`, else `HF_TOKEN` / `hf auth login` (huggingface_hub's usual lookup).
    A `revision` that is not the default branch is created first, from the default branch.
    """
    from huggingface_hub import HfApi

    api = api or HfApi(token=token)
    allow, ignore = upload_patterns(allow_patterns, ignore_patterns)
    repo_url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model", token=token)
    repo_id = getattr(repo_url, "repo_id", repo_id)
    if revision is not None and revision != "main":
        api.create_branch(repo_id, branch=revision, exist_ok=True, token=token)
    return api.upload_folder(
        repo_id=repo_id,
        folder_path=str(folder),
        commit_message=commit_message or f"Upload {Path(folder).name} with audio-vit push",
        revision=revision,
        allow_patterns=allow,
        ignore_patterns=ignore,
        token=token,
    )


# ----------------------------------------------------------------------------------------------
# Hub cache
# ----------------------------------------------------------------------------------------------


def place_in_hub_cache(
    folder: str | os.PathLike,
    repo_id: str,
    cache_dir: str | os.PathLike | None = None,
    revision: str = "main",
    commit_hash: str | None = None,
) -> Path:
    """Copy a model folder into the Hub cache layout, so `from_pretrained(repo_id)` works with `HF_HUB_OFFLINE=1`.

    Layout (huggingface_hub's): `models--user--name/blobs/<sha256>`, `snapshots/<commit>/<file>` -> blob link,
    `refs/<revision>` holding the commit. Useful to seed an air-gapped machine. Returns the snapshot folder.
    Only the files `upload_file_list` would upload are placed. `cache_dir` defaults to `HF_HUB_CACHE`.
    """
    from huggingface_hub import constants

    if repo_id.count("/") != 1:
        raise ValueError(f"repo_id={repo_id!r} must look like 'user/name'")
    cache = Path(cache_dir or constants.HF_HUB_CACHE).expanduser()
    repo_root = cache / ("models--" + repo_id.replace("/", "--"))
    files = upload_file_list(folder)
    digests = {}
    for rel in files:
        digests[rel] = hashlib.sha256((Path(folder) / rel).read_bytes()).hexdigest()
    if commit_hash is None:  # a stable fake commit id: sha1 of the file list and contents
        commit_hash = hashlib.sha1(json.dumps(sorted(digests.items())).encode()).hexdigest()
    snapshot = repo_root / "snapshots" / commit_hash
    (repo_root / "blobs").mkdir(parents=True, exist_ok=True)
    for rel, digest in digests.items():
        blob = repo_root / "blobs" / digest
        if not blob.exists():
            shutil.copyfile(Path(folder) / rel, blob)
        target = snapshot / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() or target.is_symlink():
            target.unlink()
        try:
            target.symlink_to(os.path.relpath(blob, target.parent))
        except OSError:  # no symlinks (e.g. Windows without developer mode): huggingface_hub copies too
            shutil.copyfile(blob, target)
    (repo_root / "refs").mkdir(exist_ok=True)
    (repo_root / "refs" / revision).write_text(commit_hash)
    return snapshot


__all__ = [
    "UPLOAD_IGNORE_PATTERNS",
    "check_shareable_folder",
    "place_in_hub_cache",
    "push_folder",
    "upload_file_list",
]
