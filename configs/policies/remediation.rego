# Remediation: which actions the detector takes for an alert. Off unless
# [detector.remediation] enabled = true; try it with dry_run = true first.
#
# The detector evaluates data.sentinel.remediation.actions for every alert; the input and
# the action shapes are documented in docs/detection.md ("Remediation"). Everything here is
# deliberately conservative: it acts only on findings that leave little doubt, and never
# on clients of this machine or of private networks (rego-cpp has no net.cidr_contains, so
# the detector computes input.client.loopback and input.client.private for the policy).
#
# This file sits in the policy agent's directory too: its package is separate
# (sentinel.remediation), so the request policy (sentinel.authz) is unaffected.
package sentinel.remediation

import rego.v1

# How long a client stays denied after a critical threat chain it started.
deny_ttl := "15m"

# Reverse shells: the shell is killed, the upstream that started it keeps running.
reverse_shell_rules := {
	"reverse_shell_socket_stdio",
	"reverse_shell_dev_tcp",
	"reverse_shell_netcat_exec",
}

# Deny the client of a critical threat chain (a web request that led to code execution and
# credential access, privilege escalation or persistence).
actions contains {"type": "deny_client", "ip": input.client.ip, "ttl": deny_ttl, "reason": reason} if {
	input.alert.rule == "threat_chain"
	input.alert.severity == "critical"
	public_client
	reason := sprintf("critical threat chain %s: %s", [input.alert.chain_id, input.alert.summary])
}

# Kill a reverse shell started by a process of the stack.
actions contains {"type": "kill", "pid": input.process.pid, "reason": reason} if {
	input.alert.rule in reverse_shell_rules
	is_string(input.process.stack_child)
	reason := sprintf("%s: %s", [input.alert.rule, input.alert.summary])
}

public_client if {
	input.client.valid
	not input.client.loopback
	not input.client.private
}
