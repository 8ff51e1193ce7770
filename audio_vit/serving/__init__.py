"""Serving a model folder: the gradio page and `/classify` API (`app`: `build_demo`, `audio-vit serve`), the
batcher that shares one forward pass among concurrent requests and the admission limits (`batching`), and the
page's spectrogram picture (`spectrogram_overview`)."""
