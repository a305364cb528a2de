"""The real Alertmanager (Debian's) with the lab's own configuration
(infrastructure/alertmanager, rendered as the Grafana VM renders it, its
timers shortened) delivering to the notification service: its bearer token
is accepted, a firing alert and then its resolution become admin emails
and inbox notifications."""
import datetime
import json
import os
import subprocess
import urllib.request
import uuid

import pytest
import yaml
from notification_support import ALERTMANAGER_TOKEN, inbox

from oms_test import ROOT, bearer, free_port, signed_token, unique, wait_until


def now(delta_s=0):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=delta_s)
    return t.strftime("%Y-%m-%dT%H:%M:%S.000Z")


@pytest.fixture(scope="module")
def alertmanager(notifier, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("alertmanager")
    rendered = subprocess.run(
        [os.path.join(ROOT, "infrastructure", "render-template.sh"),
         os.path.join(ROOT, "infrastructure", "alertmanager", "alertmanager.yml.tmpl")],
        env=dict(os.environ, WEBAPP_HOST="127.0.0.1", NOTIFICATION_PORT=str(notifier.port),
                 ALERTMANAGER_TOKEN=ALERTMANAGER_TOKEN), capture_output=True, text=True, check=True).stdout
    config = yaml.safe_load(rendered)
    config["route"].update(group_wait="1s", group_interval="1s")  # the lab waits 30 s and 5 min
    path = tmp / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    log = open(tmp / "alertmanager.log", "wb")
    process = subprocess.Popen(["prometheus-alertmanager", f"--config.file={path}", f"--storage.path={tmp}",
                                f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def ready():
        try:
            return urllib.request.urlopen(f"{url}/-/ready", timeout=2).status == 200
        except OSError:
            return False
    wait_until(ready, 30, what="Alertmanager ready")
    yield url
    process.terminate()
    process.wait(timeout=10)
    log.close()


def post_alert(url, alert):
    data = json.dumps([alert]).encode()
    req = urllib.request.Request(f"{url}/api/v2/alerts", data=data, headers={"Content-Type": "application/json"})
    assert urllib.request.urlopen(req, timeout=5).status == 200


def test_alertmanager_delivers_firing_then_resolved_with_its_token(alertmanager, notifier, mail):
    name = unique("LabAlert")
    alert = {"labels": {"alertname": name, "severity": "warning", "job": "order"},
             "annotations": {"summary": f"{name}: the order service is slow"}, "startsAt": now(-5)}
    post_alert(alertmanager, alert)
    wait_until(lambda: [m for m in mail.messages("ops@oms.test") if name in m["Subject"]], 40,
               what="the firing email")
    firing = [m for m in mail.messages("ops@oms.test") if name in m["Subject"]]
    assert firing[0]["Subject"] == f"[FIRING:1] {name}"
    assert f"{name}: the order service is slow" in firing[0].get_content()

    post_alert(alertmanager, dict(alert, endsAt=now(-1)))
    wait_until(lambda: any(m["Subject"] == f"[RESOLVED:1] {name}" for m in mail.messages("ops@oms.test")), 40,
               what="the resolved email")
    admin = bearer(signed_token("admin", str(uuid.uuid4())))
    kinds = sorted(i["type"] for i in inbox(notifier, admin)["items"] if name in i["title"])
    assert kinds == ["alert.firing", "alert.resolved"]
    # what came in was Alertmanager's: one alert-group event per notification
    assert notifier.metric("http_server_request_duration_seconds_count", method="POST",
                           route="/api/notifications/alerts", status_code="200") >= 2
