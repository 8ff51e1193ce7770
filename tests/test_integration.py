"""transformers integration: Auto classes, save/load, pipeline, trust_remote_code without audio_vit."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf
import torch
from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForAudioClassification,
)

from audio_vit import (
    AudioViTAudioClassificationPipeline,
    AudioViTConfig,
    AudioViTFeatureExtractor,
    AudioViTForAudioClassification,
    AudioViTModel,
    audio_classification_pipeline,
)
from tests.conftest import tiny_config_kwargs


@pytest.fixture(scope="module")
def saved_model_dir(tmp_path_factory):
    """A tiny model + feature extractor saved the way training saves them."""
    out = tmp_path_factory.mktemp("tiny_model")
    torch.manual_seed(0)
    model = AudioViTForAudioClassification(AudioViTConfig(**tiny_config_kwargs())).eval()
    extractor = AudioViTFeatureExtractor(num_mel_bins=16, max_length=32, mean=-40.0, std=15.0)
    model.save_pretrained(out)
    extractor.save_pretrained(out)
    return out


def test_auto_classes_resolve():
    config = AutoConfig.for_model("audio_vit", **tiny_config_kwargs())
    assert isinstance(config, AudioViTConfig)
    assert isinstance(AutoModel.from_config(config), AudioViTModel)
    assert isinstance(AutoModelForAudioClassification.from_config(config), AudioViTForAudioClassification)


def test_saved_folder_layout(saved_model_dir):
    files = {p.name for p in saved_model_dir.iterdir()}
    assert {"model.safetensors", "config.json", "preprocessor_config.json"} <= files
    assert not any(name.endswith((".bin", ".pt", ".pth")) for name in files)
    # The model code travels with the weights for trust_remote_code loading.
    assert {"configuration_audio_vit.py", "modeling_audio_vit.py", "modeling_spectrogram_embeddings.py",
            "modeling_layers.py", "feature_extraction_audio_vit.py"} <= files
    config = json.loads((saved_model_dir / "config.json").read_text())
    assert config["model_type"] == "audio_vit"
    assert config["auto_map"]["AutoModelForAudioClassification"] == "modeling_audio_vit.AudioViTForAudioClassification"
    preprocessor = json.loads((saved_model_dir / "preprocessor_config.json").read_text())
    assert preprocessor["auto_map"]["AutoFeatureExtractor"].endswith("AudioViTFeatureExtractor")
    assert preprocessor["mean"] == -40.0 and preprocessor["std"] == 15.0


def test_auto_from_pretrained_reproduces_logits(saved_model_dir):
    original = AudioViTForAudioClassification.from_pretrained(saved_model_dir).eval()
    loaded = AutoModelForAudioClassification.from_pretrained(saved_model_dir).eval()
    assert type(loaded) is AudioViTForAudioClassification
    x = torch.randn(2, 16, 32)
    assert torch.allclose(original(x).logits, loaded(x).logits, atol=1e-5)
    extractor = AutoFeatureExtractor.from_pretrained(saved_model_dir)
    assert isinstance(extractor, AudioViTFeatureExtractor) and extractor.mean == -40.0
    base = AutoModel.from_pretrained(saved_model_dir)
    assert isinstance(base, AudioViTModel)


def test_import_leaves_transformers_pipeline_alone():
    from transformers.pipelines import PIPELINE_REGISTRY

    impl = PIPELINE_REGISTRY.supported_tasks["audio-classification"]["impl"]
    assert "audio_vit" not in str(getattr(impl, "__module__", impl))


def test_pipeline_on_file_and_resampled_array(saved_model_dir, fsdd_clips, tmp_path):
    classifier = audio_classification_pipeline(str(saved_model_dir))
    clip = fsdd_clips[0]  # FLAC at 8 kHz, the extractor runs at 16 kHz: the pipeline must resample
    from_path = classifier(str(clip), top_k=2)
    assert len(from_path) == 2 and {r["label"] for r in from_path} <= {"zero", "one", "two"}
    assert from_path[0]["score"] >= from_path[1]["score"]

    waveform, rate = sf.read(clip, dtype="float32")
    from_array = classifier({"raw": waveform, "sampling_rate": rate}, top_k=2)
    assert [r["label"] for r in from_array] == [r["label"] for r in from_path]
    assert np.allclose([r["score"] for r in from_array], [r["score"] for r in from_path], atol=1e-5)

    # A stereo WAV at 44.1 kHz from disk works too.
    stereo = tmp_path / "stereo.wav"
    t = np.arange(44100) / 44100
    sf.write(stereo, np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 660 * t)], axis=1) * 0.3, 44100)
    assert len(classifier(str(stereo), top_k=2)) == 2


REMOTE_CODE_SCRIPT = textwrap.dedent(
    """
    import sys

    class BlockAudioViT:
        # Makes `import audio_vit` fail as if the package were not installed.
        def find_spec(self, name, path=None, target=None):
            if name == "audio_vit" or name.startswith("audio_vit."):
                raise ImportError("audio_vit is blocked in this process")

    sys.meta_path.insert(0, BlockAudioViT())
    try:
        import audio_vit  # noqa: F401
        raise SystemExit("audio_vit should not be importable here")
    except ImportError:
        pass

    import json
    import numpy as np
    import torch
    from transformers import AutoModelForAudioClassification, pipeline

    model_dir, input_path = sys.argv[1], sys.argv[2]
    model = AutoModelForAudioClassification.from_pretrained(model_dir, trust_remote_code=True).eval()
    x = torch.from_numpy(np.load(input_path))
    with torch.no_grad():
        logits = model(x).logits
    classifier = pipeline("audio-classification", model=model_dir, trust_remote_code=True)
    waveform = np.random.default_rng(0).standard_normal(16000).astype("float32") * 0.1
    predictions = classifier(waveform, top_k=3)
    print(json.dumps({"class": type(model).__module__, "logits": logits.tolist(),
                      "labels": [p["label"] for p in predictions]}))
    """
)


def test_trust_remote_code_without_audio_vit(saved_model_dir, tmp_path):
    x = torch.randn(2, 16, 32)
    np.save(tmp_path / "x.npy", x.numpy())
    script = tmp_path / "load_remote.py"
    script.write_text(REMOTE_CODE_SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), str(saved_model_dir), str(tmp_path / "x.npy")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["class"].startswith("transformers_modules"), report["class"]
    expected = AudioViTForAudioClassification.from_pretrained(saved_model_dir).eval()(x).logits
    assert torch.allclose(torch.tensor(report["logits"]), expected, atol=1e-5)
    assert sorted(report["labels"]) == ["one", "two", "zero"]
