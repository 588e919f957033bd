"""A shipped persona suite on the real bundled model: it runs and reports (a model this
small is not expected to pass). Skipped when the embedded model cannot run here,
unless ``PERSONAE_REQUIRE_MODEL=1``."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from personae.config import Settings
from personae.errors import ProviderUnavailable
from personae.providers.llama_cpp import bundled_model_path, import_llama_cpp
from personae.quality.report import json_report, junit_xml
from personae.quality.results import Target
from personae.quality.runner import PersonaTester
from personae.quality.suite import load_suite
from tests.support.runtime import open_runtime

pytestmark = pytest.mark.slow
SUITE = Path(__file__).parents[2] / "src" / "personae" / "quality" / "suites" / "python-tutor.yaml"


async def test_a_shipped_suite_runs_on_the_embedded_model(sqlite_url: str,
                                                          tmp_path: Path) -> None:
    try:
        import_llama_cpp()
        bundled_model_path()
    except ProviderUnavailable as exc:
        if os.environ.get("PERSONAE_REQUIRE_MODEL") == "1":
            raise
        pytest.skip(f"embedded model not available: {exc.message}")
    settings = Settings(data_dir=tmp_path, database_url=sqlite_url,
                        embedded_context_window=1024, embedded_parallel=1)
    suite = load_suite(SUITE)
    async with open_runtime(settings) as runtime:
        await runtime.load_samples()
        tester = PersonaTester(runtime.personas, runtime.prepared, runtime.providers,
                               runtime.conversations)
        result = await tester.run(await runtime.auth.local_admin(), suite,
                                  Target("python-tutor"))
    assert [case.name for case in result.cases] == [case.name for case in suite.cases]
    for case in result.cases:
        assert case.status in {"passed", "failed", "skipped"}
        assert len(case.runs) == 1
        assert all(run.error is None for run in case.runs), case.runs
        assert all(run.replies for run in case.runs)
    assert json_report([result])["sides"][0]["persona"] == "python-tutor"
    assert ET.fromstring(junit_xml([result])).find("testsuite") is not None
