"""`audio-vit push`: upload a trained model folder to the Hugging Face Hub (create_repo + upload_folder)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    from ..hub.sharing import UPLOAD_IGNORE_PATTERNS

    parser = argparse.ArgumentParser(
        prog="audio-vit push",
        description=(
            "Upload a model folder written by training (config.json, model.safetensors, preprocessor_config.json, "
            "README.md model card, confusion_matrix.png, remote-code .py files, results JSON) to a Hub model "
            "repository, creating it if needed. Training state is left out: "
            + ", ".join(UPLOAD_IGNORE_PATTERNS[:8]) + ", ... "
            "The token comes from --token, else HF_TOKEN, else `hf auth login`."
        ),
    )
    parser.add_argument("--model", required=True, help="model folder to upload (a training --output-dir)")
    parser.add_argument("--repo-id", required=True, help="target repository, USER/NAME or ORG/NAME")
    parser.add_argument("--private", action="store_true", help="create the repository as private (if it does not exist)")
    parser.add_argument("--revision", default=None, help="branch to push to (created from main if missing; default: main)")
    parser.add_argument("--commit-message", default=None, help="commit message (default: 'Upload <folder> with audio-vit push')")
    parser.add_argument("--token", default=None, help="Hub token (default: HF_TOKEN or the `hf auth login` token)")
    parser.add_argument("--include", action="append", default=None, metavar="PATTERN",
                        help="only upload files matching this fnmatch pattern (repeatable)")
    parser.add_argument("--exclude", action="append", default=None, metavar="PATTERN",
                        help="also skip files matching this fnmatch pattern (repeatable)")
    parser.add_argument("--dry-run", action="store_true",
                        help="check the folder and list exactly the files that would be uploaded; no network")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from ..hub.sharing import check_shareable_folder, push_folder, upload_file_list
    from ..model_folder import ModelFolderError

    if args.repo_id.count("/") != 1 or not all(args.repo_id.split("/")):
        print(f"audio-vit push: error: --repo-id {args.repo_id!r} must look like USER/NAME", file=sys.stderr)
        return 2
    folder = Path(args.model)
    try:
        warnings = check_shareable_folder(folder)
    except (ModelFolderError, ValueError) as err:
        print(f"audio-vit push: error: {err}", file=sys.stderr)
        return 1
    for warning in warnings:
        print(f"audio-vit push: warning: {warning}", file=sys.stderr)
    files = upload_file_list(folder, allow_patterns=args.include, ignore_patterns=args.exclude)
    total = sum((folder / name).stat().st_size for name in files)
    if args.dry_run:
        print(f"dry run: would upload {len(files)} file(s), {total / 1e6:.2f} MB, from {folder} to "
              f"{args.repo_id}@{args.revision or 'main'}{' (private)' if args.private else ''}:")
        for name in files:
            print(f"  {name}")
        return 0
    result = push_folder(folder, args.repo_id, private=args.private or None, revision=args.revision,
                         commit_message=args.commit_message, token=args.token,
                         allow_patterns=args.include, ignore_patterns=args.exclude)
    url = getattr(result, "commit_url", None) or str(result)
    print(f"uploaded {len(files)} file(s), {total / 1e6:.2f} MB, to https://huggingface.co/{args.repo_id}: {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
