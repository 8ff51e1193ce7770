#!/usr/bin/env bash
# Install audio_vit with its test extras and run the test suite offline.
# Used by the README quick start and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet -e ".[dev]"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export TOKENIZERS_PARALLELISM=false
python -m pytest tests -q -p no:cacheprovider --durations=15 "$@"
