# Portcullis action for fail2ban: fail2ban decides, Portcullis enforces.
#
# Install: copy this file to /etc/fail2ban/action.d/portcullis.py and use it in a jail:
#
#     [dovecot]
#     action = portcullis.py[socket="/var/lib/portcullis/fail2ban-action.sock", ipv6_prefix=64]
#
# fail2ban loads Python actions into its own process and calls ban/unban from its jail thread, one ticket at a time.
# This action only queues each ban or unban there and returns: a sender thread hands the queue to Portcullis in batches
# over a local socket (one round trip for many bans; the stock ipset action spawns a shell per ban, about 220 bans/s).
# Portcullis puts the bans into the jail's managed sets `fail2ban-<jail>` / `fail2ban6-<jail>` (hash:net with the
# ban's timeout), which one managed DROP rule per family matches, records them and reports each as an event at once.
# Portcullis's own BanIp/UnbanIp answer only once the kernel has the change.
#
# Arguments:
#   socket       the Portcullis server's action socket (its config `fail2ban.actionSocket`).
#   ipv6_prefix  ban an IPv6 address's whole network of this prefix length (e.g. 64); 128 = the address alone.
#   timeout      seconds to wait for Portcullis.
#
# When Portcullis cannot be reached, the queued bans and unbans go to the same sets with the `ipset` command (once the
# sets exist), so that nothing fail2ban decides is left unenforced; Portcullis catches up when it is back.

import collections
import ipaddress
import json
import socket as sockets
import subprocess
import threading

from fail2ban.server.actions import ActionBase

# Items per request to Portcullis.
BATCH = 500
# While fail2ban bans many at once (a banip of a list, the bans it restores at start), the sender waits up to this long
# after a request for a full batch: fewer, fuller requests. A ban that comes alone is sent at once.
LINGER = 0.002


class PortcullisAction(ActionBase):

	def __init__(self, jail, name, socket="/var/lib/portcullis/fail2ban-action.sock", ipv6_prefix="128", timeout="5"):
		super(PortcullisAction, self).__init__(jail, name)
		self.socket = socket
		self.ipv6_prefix = int(ipv6_prefix)
		if not 1 <= self.ipv6_prefix <= 128:
			raise ValueError("ipv6_prefix must be 1 to 128, got %r" % ipv6_prefix)
		self.timeout = float(timeout)
		self._connection = None
		self._reader = None
		self._sequence = 0
		self._io = threading.Lock()
		# Bans and unbans in the order fail2ban made them; `_busy` counts queued and in-flight items.
		self._queue = collections.deque()
		self._busy = 0
		self._changed = threading.Condition()
		self._sender = None

	@property
	def _prolongable(self):
		return True

	def start(self):
		try:
			self._request("start")
		except OSError as error:
			self._logSys.warning("Portcullis is not reachable (%s); it makes the jail's sets when it is back", error)

	def stop(self):
		# fail2ban unbans every ticket before it stops the action: those unbans go out first.
		self._drain()
		try:
			self._request("stop")
		except OSError:
			pass
		with self._io:
			self._close()

	def ban(self, aInfo):
		self._enqueue(dict(op="ban", ip=str(aInfo["ip"]), bantime=float(aInfo["bantime"]), failures=int(aInfo["failures"] or 0), ipv6_prefix=self.ipv6_prefix))

	def reban(self, aInfo):
		return self.ban(aInfo)

	def prolong(self, aInfo):
		return self.ban(aInfo)

	def unban(self, aInfo):
		self._enqueue(dict(op="unban", ip=str(aInfo["ip"]), ipv6_prefix=self.ipv6_prefix))

	def _enqueue(self, item):
		with self._changed:
			self._queue.append(item)
			self._busy += 1
			if self._sender is None or not self._sender.is_alive():
				self._sender = threading.Thread(target=self._send_loop, name="f2b/portcullis/" + self._jail.name, daemon=True)
				self._sender.start()
			# Only what the sender waits for: a first item, or a full batch (waking it for every ban costs the jail
			# thread the GIL each time).
			if len(self._queue) == 1 or len(self._queue) == BATCH:
				self._changed.notify_all()

	def _drain(self):
		with self._changed:
			self._changed.wait_for(lambda: self._busy == 0, timeout=max(self.timeout * 4, 30))

	def _send_loop(self):
		while True:
			with self._changed:
				# Items that came while the last request was out mean fail2ban is banning many: linger for more.
				burst = len(self._queue) > 0
				self._changed.wait_for(lambda: len(self._queue) > 0)
				if burst:
					self._changed.wait_for(lambda: len(self._queue) >= BATCH, timeout=LINGER)
				items = [self._queue.popleft() for _ in range(min(BATCH, len(self._queue)))]
			try:
				self._request("batch", items=items)
			except OSError as error:
				for item in items:
					self._fallback(item, error)
			except Exception as error:
				self._logSys.error("Portcullis refused a batch of %d: %s", len(items), error)
			finally:
				with self._changed:
					self._busy -= len(items)
					self._changed.notify_all()

	def _request(self, op, **fields):
		with self._io:
			return self._exchange(op, fields)

	def _exchange(self, op, fields):
		for attempt in (1, 2):
			try:
				if self._connection is None:
					self._connect()
				self._sequence += 1
				request = dict(fields, id=self._sequence, op=op, jail=self._jail.name)
				self._connection.sendall((json.dumps(request) + "\n").encode("utf-8"))
				line = self._reader.readline()
				if not line:
					raise ConnectionError("Portcullis closed the connection")
				reply = json.loads(line)
				break
			except OSError:
				# A connection Portcullis closed (a restart) is retried once on a new one.
				self._close()
				if attempt == 2:
					raise
		if not reply.get("ok"):
			raise RuntimeError("Portcullis refused %s: %s (%s)" % (op, reply.get("error"), reply.get("reason")))
		for problem in reply.get("refused", []):
			self._logSys.warning("Portcullis refused to enforce %s: %s", problem.get("ip"), problem.get("error"))
		return reply

	def _connect(self):
		connection = sockets.socket(sockets.AF_UNIX, sockets.SOCK_STREAM)
		connection.settimeout(self.timeout)
		try:
			connection.connect(self.socket)
		except OSError:
			connection.close()
			raise
		self._connection = connection
		self._reader = connection.makefile("r", encoding="utf-8")

	def _close(self):
		if self._connection is not None:
			try:
				self._reader.close()
				self._connection.close()
			except OSError:
				pass
		self._connection = None
		self._reader = None

	def _fallback(self, item, error):
		ip = item["ip"]
		v6 = ":" in ip
		name = ("fail2ban6-" if v6 else "fail2ban-") + self._jail.name
		element = ip
		if v6 and self.ipv6_prefix < 128:
			element = str(ipaddress.ip_network("%s/%d" % (ip, self.ipv6_prefix), strict=False))
		command = "add" if item["op"] == "ban" else "del"
		args = ["ipset", command, name, element, "-exist"]
		if command == "add" and item["bantime"] > 0:
			args += ["timeout", str(min(2147483, int(item["bantime"] + 0.999)))]
		self._logSys.warning("Portcullis is not reachable (%s); %s %s directly with ipset", error, command, element)
		try:
			subprocess.run(args, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, timeout=self.timeout)
		except Exception as failure:
			self._logSys.error("ipset %s %s %s failed: %s", command, name, element, failure)


Action = PortcullisAction
