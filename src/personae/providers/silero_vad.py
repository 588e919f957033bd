"""Silero voice activity detection (v6), from the model file faster-whisper ships.

The model takes one 512-sample frame at 16 kHz with the previous frame's last 64
samples prepended (576 floats), plus its recurrent state (``h`` and ``c``, each
``(1, 1, 128)``), and returns the frame's speech probability and the
next state. Each stream keeps its own state and context (:class:`SileroStream`);
the onnxruntime session is stateless, so one per process serves every stream. It is
tiny (a frame costs well under a millisecond on one thread), so it runs inline on
the event loop rather than paying a thread hop per 32 ms frame.
"""

from __future__ import annotations

import threading
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from personae.config import ProviderConfig, Settings
from personae.errors import ProviderUnavailable
from personae.providers.speech import RECOGNITION_RATE, SAMPLE_WIDTH

FRAME_SAMPLES = 512
CONTEXT_SAMPLES = 64
STATE_SHAPE = (1, 1, 128)
MODEL_FILE = "silero_vad_v6.onnx"
INSTALL_HINT = "pip install 'personae[voice]'"

_session: Any = None
_session_lock = threading.Lock()


def model_file() -> Path:
    """The Silero model inside the installed faster_whisper package (not imported)."""
    spec = find_spec("faster_whisper")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / "assets" / MODEL_FILE
        if path.is_file():
            return path
    raise ProviderUnavailable("silero", f"the Silero VAD model ({MODEL_FILE}, part of "
                              f"faster-whisper) is not installed; install it with: "
                              f"{INSTALL_HINT}")


def shared_session() -> Any:
    """The process's one onnxruntime session for the model, made on first use."""
    global _session
    with _session_lock:
        if _session is None:
            try:
                import onnxruntime
            except ImportError as exc:
                raise ProviderUnavailable("silero", f"onnxruntime is not installed; "
                                          f"install it with: {INSTALL_HINT}") from exc
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            _session = onnxruntime.InferenceSession(
                str(model_file()), sess_options=options, providers=["CPUExecutionProvider"])
        return _session


class SileroStream:
    """One audio stream's detector: its recurrent state and last 64 samples."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self._h: npt.NDArray[np.float32] = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._c: npt.NDArray[np.float32] = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._context: npt.NDArray[np.float32] = np.zeros(CONTEXT_SAMPLES, dtype=np.float32)

    def __call__(self, frame: bytes) -> float:
        """The probability that ``frame`` (512 PCM16 samples at 16 kHz) holds speech."""
        if len(frame) != FRAME_SAMPLES * SAMPLE_WIDTH:
            raise ValueError(f"a Silero frame is {FRAME_SAMPLES} PCM16 samples "
                             f"({FRAME_SAMPLES * SAMPLE_WIDTH} bytes), not {len(frame)} bytes")
        samples = np.frombuffer(frame, dtype="<i2").astype(np.float32) / 32768.0
        window = np.concatenate((self._context, samples))[np.newaxis, :]
        probability, self._h, self._c = self._session.run(
            None, {"input": window, "h": self._h, "c": self._c})
        self._context = samples[-CONTEXT_SAMPLES:]
        return float(probability.reshape(-1)[0])

    def reset(self) -> None:
        self._h.fill(0.0)
        self._c.fill(0.0)
        self._context.fill(0.0)


class SileroDetector:
    """A :class:`~personae.providers.speech.VoiceActivityDetector` over Silero v6."""

    frame_samples = FRAME_SAMPLES
    sample_rate = RECOGNITION_RATE

    def __init__(self, name: str = "silero") -> None:
        self.name = name
        self._session = shared_session()

    def open(self) -> SileroStream:
        return SileroStream(self._session)

    async def aclose(self) -> None:
        """Nothing to free: the session is the process's, shared by every detector."""


def build_silero(name: str, config: ProviderConfig | None, settings: Settings) -> SileroDetector:
    """Factory for the ``personae.voice_activity`` group (``silero``)."""
    del config, settings  # nothing to configure: the model and its frame are fixed
    return SileroDetector(name)

