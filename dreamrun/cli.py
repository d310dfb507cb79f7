"""The command line: a Hydra app around dreamrun.job.

    python -m dreamrun target=mixed_6 octaves=4
    python -m dreamrun -m target=mixed_5b,mixed_6 octaves=2,4
"""
import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from dreamrun.errors import EXIT_INTERRUPTED, EXIT_USER_ERROR, DreamError
from dreamrun.images import save_json
from dreamrun.job import run_job
from dreamrun.run_names import register_resolver
from dreamrun.schema import DreamConfig, register_configs

log = logging.getLogger("dreamrun")


def config_dir() -> str:
    """conf/ shipped inside an installed package, else the source checkout's top-level conf/."""
    here = Path(__file__).resolve().parent
    packaged = here / "conf"
    return str(packaged if (packaged / "config.yaml").is_file() else here.parent / "conf")


register_configs()
register_resolver()


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")
def app(cfg: DreamConfig) -> None:
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    in_sweep = hydra_cfg.mode == RunMode.MULTIRUN
    try:
        dream_path = run_job(cfg, run_dir)
    except DreamError as e:
        save_json({"status": "failed", "error": str(e)}, run_dir / "metrics.json")
        log.error("dreamrun: error: %s", e)
        if in_sweep:
            raise  # the launcher records this job as failed and runs the others
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        save_json({"status": "interrupted"}, run_dir / "metrics.json")
        log.error("dreamrun: interrupted")
        sys.exit(EXIT_INTERRUPTED)
    print(dream_path, flush=True)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
