# Tests for sentinel.authz, run with run_policy_tests (or `opa test`).
#
# Two habits keep these tests correct under rego-cpp, which the agent embeds (see
# docs/agents.md): mock input field by field (`with input.request as r`), never whole
# (`with input as {...}` aborts the engine when the rules call built-ins), and bind mock
# values written as literals to local variables first (`with ... as <rule>` and values
# returned by functions are mis-read).
package sentinel.authz_test

import rego.v1

import data.sentinel.authz

anonymous := {"authenticated": false, "claims": {}}

admin := {"authenticated": true, "claims": {"sub": "alice", "roles": ["admin"]}}

user := {"authenticated": true, "claims": {"sub": "bob", "roles": ["user"]}}

test_public_page_allowed if {
	r := {"method": "GET", "path": "/", "query": {}, "headers": {}, "body_size": 0}
	i := anonymous
	d := authz.decision with input.request as r with input.identity as i with input.route as "static"
	d.allow
	d.status == 200
	count(d.deny) == 0
	d.headers["x-sentinel-policy"] == "sentinel.authz"
}

test_admin_path_anonymous_is_401 if {
	r := {"method": "GET", "path": "/admin/users", "query": {}, "headers": {}, "body_size": 0}
	i := anonymous
	d := authz.decision with input.request as r with input.identity as i with input.route as "api"
	not d.allow
	d.status == 401
	"the admin area requires the admin role" in d.deny
}

test_admin_path_without_role_is_403 if {
	r := {"method": "GET", "path": "/admin", "query": {}, "headers": {}, "body_size": 0}
	i := user
	d := authz.decision with input.request as r with input.identity as i with input.route as "api"
	not d.allow
	d.status == 403
	d.headers["x-sentinel-subject"] == "bob"
}

test_admin_path_with_role_allowed if {
	r := {"method": "GET", "path": "/admin/users", "query": {}, "headers": {}, "body_size": 0}
	i := admin
	d := authz.decision with input.request as r with input.identity as i with input.route as "api"
	d.allow
	d.status == 200
	d.headers["x-sentinel-subject"] == "alice"
}

test_internal_prefix_needs_trailing_slash if {
	outside := {"method": "GET", "path": "/internalize", "query": {}, "headers": {}, "body_size": 0}
	inside := {"method": "GET", "path": "/internal/x", "query": {}, "headers": {}, "body_size": 0}
	i := anonymous
	authz.allow with input.request as outside with input.identity as i with input.route as "api"
	not authz.allow with input.request as inside with input.identity as i with input.route as "api"
}

test_method_not_in_route_allow_list_is_405 if {
	r := {"method": "POST", "path": "/logo.png", "query": {}, "headers": {}, "body_size": 0}
	i := anonymous
	d := authz.decision with input.request as r with input.identity as i with input.route as "static"
	not d.allow
	d.status == 405
	"method POST is not allowed on route static" in d.deny
}

test_unlisted_route_accepts_any_method if {
	r := {"method": "PATCH", "path": "/x", "query": {}, "headers": {}, "body_size": 0}
	i := anonymous
	authz.allow with input.request as r with input.identity as i with input.route as "other"
}

test_large_body_denied if {
	r := {"method": "POST", "path": "/upload", "query": {}, "headers": {}, "body_size": 20000000}
	i := user
	d := authz.decision with input.request as r with input.identity as i with input.route as "api"
	not d.allow
	d.status == 403
	"request body is too large" in d.deny
}
