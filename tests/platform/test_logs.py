"""`make up` prints what an operator needs (services started, runs started and finished with counts, errors): the
frameworks' own chatter only at CODERAI_LOG_LEVEL=debug."""

import yaml

from coderai_assets.platform import Platform, dagster_home


def _plan(settings, tmp_path, level: str) -> tuple[dict[str, list[str]], dict]:
    configured = settings.model_copy(
        update={"log_level": level, "llm_provider": "local", "dagster_home": tmp_path / level}
    )
    argv = {s.name: s.argv for s in Platform(configured, tmp_path / "logs").plan()}
    instance = yaml.safe_load((dagster_home(configured) / "dagster.yaml").read_text())
    return argv, instance


def test_the_platform_is_quiet_by_default_and_says_everything_at_debug(settings, tmp_path):
    argv, instance = _plan(settings, tmp_path, "info")
    # Sensor ticks (two lines per sensor every few seconds) and access lines are the daemon's and uvicorn's info.
    assert argv["dagster-daemon"][-2:] == ["--log-level", "warning"]
    assert "--no-access-log" in argv["api"] and argv["api"][argv["api"].index("--log-level") + 1] == "warning"
    assert argv["dagster-code-server"][-2:] == ["--log-level", "info"]  # where our sensors' lines are printed
    # Run workers print Dagster's events at the instance's level: info hides its dozen debug events per step.
    assert instance["python_logs"]["python_log_level"] == "INFO"
    assert instance["storage"]["postgres"]  # the rest of dagster.yaml as it is

    argv, instance = _plan(settings, tmp_path, "debug")
    assert argv["dagster-daemon"][-2:] == ["--log-level", "debug"] and "--no-access-log" not in argv["api"]
    assert instance["python_logs"]["python_log_level"] == "DEBUG"
