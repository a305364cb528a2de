"""Fixtures for the notification service's tests: a mail sink and a webhook
receiver of their own, the user service (addresses it does not know yet),
and one notification service per test module (one consumer of
notification.events at a time: two would share its deliveries)."""
import pytest
from notification_support import notification_env, purge_queue, start_notifier
from sinks import MailSink, WebhookSink

from oms_test import Service


@pytest.fixture(scope="module")
def mail():
    sink = MailSink().start()
    yield sink
    sink.stop()


@pytest.fixture(scope="module")
def webhook():
    sink = WebhookSink()
    yield sink
    sink.close()


@pytest.fixture(scope="module")
def user_service():
    service = Service("user").start()
    yield service
    assert service.stop() == 0, service.read_log()[-3000:]


@pytest.fixture(scope="module")
def notifier(mail, webhook, user_service):
    purge_queue()
    service = start_notifier(notification_env(mail, webhook, user_service))
    yield service
    assert service.stop() == 0, service.read_log()[-4000:]
