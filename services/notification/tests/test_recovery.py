"""The notification service killed with SIGKILL in the middle of a delivery:
before the event was taken in (the broker delivers it again), and in the
middle of sending it (its claim lapses; the reclaim sweep or the event's
redelivery, which waits while the claim holds, sends it). Either way the
customer gets the email once."""
import signal
import socket
import threading

from notification_support import Customer, notification_env, order_data, publish, purge_queue, start_notifier

from oms_test import clear_faults, query, wait_until


def kill(service):
    service.process.send_signal(signal.SIGKILL)
    service.process.wait(timeout=20)
    service.log.close()


def settled(event_id):
    rows = query("SELECT count(*) FILTER (WHERE sent_at IS NULL), count(*) FROM notifications.deliveries"
                 " WHERE event_id = %s", event_id)
    return rows[0][1] > 0 and rows[0][0] == 0


class BlackHole:
    """An SMTP server that accepts connections and never says a word: a
    send to it hangs until the mailer's timeout."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.held = []
        self.thread = threading.Thread(target=self.accept, daemon=True)
        self.thread.start()

    def accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self):
        self.sock.close()
        for conn in self.held:
            conn.close()


def test_killed_before_taking_the_event_in_it_is_delivered_once_after_the_restart(mail, webhook, user_service):
    purge_queue()
    env = notification_env(mail, webhook, user_service)
    first = start_notifier(env)
    ivy = Customer("Ivy")
    ivy.register()
    mail.wait_for(ivy.email)
    first.apply_faults({"notification.slow_consumer_ms": 60000})
    event_id = publish("order.confirmed", order_data(ivy))
    # held by the slow consumer: delivered, unacked
    wait_until(lambda: first.metric("messaging_queue_messages", destination="notification.events",
                                    state="unacked") >= 1, 20, what="the delivery held")
    kill(first)
    assert not query("SELECT 1 FROM notifications.events WHERE id = %s", event_id)
    clear_faults()  # the next process must not be slow too
    second = start_notifier(env)
    try:
        wait_until(lambda: settled(event_id), 30, what="the event delivered after the restart")
        confirmed = [m for m in mail.messages(ivy.email) if "confirmed" in m["Subject"]]
        assert len(confirmed) == 1
    finally:
        assert second.stop() == 0, second.read_log()[-3000:]


def test_killed_while_sending_the_lapsed_claim_is_sent_once(mail, webhook, user_service):
    purge_queue()
    hole = BlackHole()
    try:
        # SMTP that never answers: the send is under way when the process dies
        env = notification_env(mail, webhook, user_service, SMTP_URL=f"smtp://127.0.0.1:{hole.port}",
                               SMTP_TIMEOUT_MS="30000", NOTIFICATION_CLAIM_LEASE_MS="70000")
        first = start_notifier(env)
        jay = Customer("Jay")
        jay.register()
        wait_until(lambda: query("SELECT 1 FROM notifications.recipients WHERE user_id = %s", jay.id), 20,
                   what="Jay known")
        event_id = publish("order.confirmed", order_data(jay))
        wait_until(lambda: query("SELECT 1 FROM notifications.deliveries WHERE event_id = %s"
                                 " AND claimed_until > now()", event_id), 20, what="the email claimed")
        wait_until(lambda: len(hole.held) >= 1, 20, what="the SMTP connection")
        kill(first)
    finally:
        hole.close()
    # the claim outlives the process; shorten it, as if its lease had run
    query("UPDATE notifications.deliveries SET claimed_until = now() + interval '1 second'"
          " WHERE event_id = %s AND sent_at IS NULL", event_id)
    second = start_notifier(notification_env(mail, webhook, user_service))
    try:
        wait_until(lambda: settled(event_id), 30, what="the lapsed claim sent by the reclaim sweep")
        confirmed = [m for m in mail.messages(jay.email) if "confirmed" in m["Subject"]]
        assert len(confirmed) == 1  # sent by the reclaim sweep or by the redelivery, whichever came first
    finally:
        assert second.stop() == 0, second.read_log()[-3000:]
