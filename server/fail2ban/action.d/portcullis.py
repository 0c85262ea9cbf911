# Portcullis action for fail2ban: fail2ban decides, Portcullis enforces.
#
# Install: copy this file to /etc/fail2ban/action.d/portcullis.py and use it in a jail:
#
#     [dovecot]
#     action = portcullis.py[socket="/var/lib/portcullis/fail2ban-action.sock", ipv6_prefix=64]
#
# fail2ban loads Python actions into its own process, so a ban costs one round trip on a local socket instead of a
# shell and an `ipset` process (the stock ipset action manages about 220 bans/s; this one thousands). Portcullis puts
# each ban into the jail's managed sets `fail2ban-<jail>` / `fail2ban6-<jail>` (hash:net with the ban's timeout) that
# one managed DROP rule per family matches, records it and reports it as an event at once.
#
# Arguments:
#   socket       the Portcullis server's action socket (its config `fail2ban.actionSocket`).
#   ipv6_prefix  ban an IPv6 address's whole network of this prefix length (e.g. 64); 128 = the address alone.
#   timeout      seconds to wait for Portcullis.
#
# When Portcullis cannot be reached, bans and unbans go to the same sets with the `ipset` command (if the sets exist),
# so that nothing fail2ban decides is left unenforced; Portcullis reconciles when it is back.

import json
import socket as sockets
import subprocess
import threading

from fail2ban.server.actions import ActionBase


class PortcullisAction(ActionBase):

	def __init__(self, jail, name, socket="/var/lib/portcullis/fail2ban-action.sock", ipv6_prefix="128", timeout="5"):
		super(PortcullisAction, self).__init__(jail, name)
		self.socket = socket
		self.ipv6_prefix = int(ipv6_prefix)
		if not 1 <= self.ipv6_prefix <= 128:
			raise ValueError("ipv6_prefix must be 1 to 128, got %r" % ipv6_prefix)
		self.timeout = float(timeout)
		# fail2ban calls actions from the jail's thread and from its server thread (banip): one request at a time.
		self._lock = threading.Lock()
		self._connection = None
		self._reader = None
		self._sequence = 0

	@property
	def _prolongable(self):
		return True

	def start(self):
		try:
			self._call("start")
		except OSError as error:
			self._logSys.warning("Portcullis is not reachable (%s); its sets are made at the first ban it sees", error)

	def stop(self):
		try:
			self._call("stop")
		except OSError:
			pass
		with self._lock:
			self._close()

	def ban(self, aInfo):
		request = dict(ip=str(aInfo["ip"]), bantime=float(aInfo["bantime"]), failures=int(aInfo["failures"] or 0), ipv6_prefix=self.ipv6_prefix)
		try:
			self._call("ban", **request)
		except OSError as error:
			self._fallback("add", request, error)

	def reban(self, aInfo):
		return self.ban(aInfo)

	def prolong(self, aInfo):
		return self.ban(aInfo)

	def unban(self, aInfo):
		request = dict(ip=str(aInfo["ip"]), ipv6_prefix=self.ipv6_prefix)
		try:
			self._call("unban", **request)
		except OSError as error:
			self._fallback("del", request, error)

	def _call(self, op, **fields):
		with self._lock:
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

	def _fallback(self, command, request, error):
		ip = request["ip"]
		v6 = ":" in ip
		name = ("fail2ban6-" if v6 else "fail2ban-") + self._jail.name
		element = ip
		if v6 and self.ipv6_prefix < 128:
			import ipaddress
			element = str(ipaddress.ip_network("%s/%d" % (ip, self.ipv6_prefix), strict=False))
		args = ["ipset", command, name, element, "-exist"]
		bantime = request.get("bantime")
		if command == "add" and bantime is not None and bantime > 0:
			args += ["timeout", str(min(2147483, int(bantime + 0.999)))]
		self._logSys.warning("Portcullis is not reachable (%s); %s %s directly with ipset", error, command, element)
		subprocess.run(args, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, timeout=self.timeout)


Action = PortcullisAction
