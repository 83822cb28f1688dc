"""Open the MLflow runs page in a headless Chromium and save a screenshot for a person to look
at: what a user sees in `mlflow ui` after `dvc repro`.

    make screenshot            # installs Debian's chromium if missing, then runs this
    python tools/mlflow_screenshot.py [--store sqlite:///mlflow.db] [--out reports/screenshots]

It starts its own `mlflow server` on 127.0.0.1 (a free port), waits for it, takes one picture
of the experiment's runs table and one of the chart view, and stops the server. Screenshots
are not committed (reports/screenshots is git-ignored).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from lstm_overfit.infrastructure.team import free_port

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--hide-scrollbars", "--window-size=1600,1000",
                  "--virtual-time-budget=15000"]


def wait_for(url: str, seconds: float) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return json.load(r)
        except OSError as err:
            if time.monotonic() > deadline:
                raise SystemExit(f"error: mlflow server did not answer {url} within {seconds:.0f} s") from err
            time.sleep(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", default=f"sqlite:///{ROOT / 'mlflow.db'}")
    ap.add_argument("--experiment", default="lstm-overfit")
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "screenshots")
    args = ap.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        raise SystemExit("error: chromium is not installed (run `make screenshot`, which installs it)")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1",
                               "--port", str(port), "--backend-store-uri", args.store,
                               "--workers", "1"], cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        exp = wait_for(f"{base}/api/2.0/mlflow/experiments/get-by-name?experiment_name="
                       f"{args.experiment}", 90)["experiment"]["experiment_id"]
        args.out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as profile:
            for name, page in (("runs", f"#/experiments/{exp}/runs"),
                               ("charts", f"#/experiments/{exp}/runs?compareRunsMode=CHART")):
                target = args.out / f"mlflow_{name}.png"
                subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                                f"--screenshot={target}", f"{base}/{page}"], check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
                print(target)
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
