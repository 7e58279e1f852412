"""Rules loaded after the CRS 3.3 detection rules: attack classes the Debian CRS predates.

Debian bookworm ships CRS 3.3.4, which has no rule for Log4Shell lookups, JavaScript
prototype pollution, cloud-metadata SSRF or NoSQL operators in JSON keys; CRS 4 added rules
for all four (944150, 934130, 934110, the reworked 942290). These are written in the same
spirit, not copied, and score like CRS rules (critical = 5) so the anomaly threshold governs
them. The XXE rule is ours: no CRS version has one, but an ``<!ENTITY`` declaration in a
request body has no business in an API request. Disable the set with
``WafConfig(crs_supplement=False)`` or remove single rules per route like any CRS rule.
"""

from __future__ import annotations

SUPPLEMENT_IDS = range(9_999_100, 9_999_200)

_SCORE = (
    "severity:'CRITICAL',tag:'paranoia-level/1',tag:'sentinel-supplement',"
    "setvar:'tx.anomaly_score_pl1=+%{tx.critical_anomaly_score}'"
)
_LOGDATA = "logdata:'Matched Data: %{TX.0} found within %{MATCHED_VAR_NAME}: %{MATCHED_VAR}'"

SUPPLEMENT = f"""\
SecRule REQUEST_LINE|ARGS|ARGS_NAMES|REQUEST_COOKIES|REQUEST_COOKIES_NAMES|REQUEST_HEADERS|XML:/* \
  "@rx (?i)\\$\\{{[^}}]{{0,30}}(?:\\$\\{{|jndi|ctx\\b)" \
  "id:9999101,phase:2,block,capture,t:none,t:urlDecodeUni,t:htmlEntityDecode,\
msg:'Log4Shell: JNDI or nested lookup (after CRS 4 rule 944150)',{_LOGDATA},\
tag:'attack-injection-java',{_SCORE}"
SecRule ARGS|ARGS_NAMES|REQUEST_COOKIES|REQUEST_COOKIES_NAMES|XML:/* \
  "@rx (?i)__proto__|\\bconstructor\\s*(?:\\.|\\]?\\[)\\s*['\\"]?prototype\\b" \
  "id:9999102,phase:2,block,capture,t:none,t:urlDecodeUni,\
msg:'JavaScript prototype pollution (after CRS 4 rule 934130)',{_LOGDATA},\
tag:'attack-injection-generic',{_SCORE}"
SecRule ARGS|XML:/* \
  "@rx (?i)(?:^|[^\\w.])(?:169\\.254\\.169\\.254|metadata\\.google\\.internal|\
metadata\\.azure\\.com|100\\.100\\.100\\.200|fd00:ec2::254)\
|^\\s*(?:gopher|dict|ldaps?|tftp|jar|netdoc)://\
|^\\s*[a-z][a-z0-9+.-]{{1,10}}://(?:[^/@]*@)?(?:localhost|127(?:\\.\\d{{1,3}}){{1,3}}|0\\.0\\.0\\.0\
|\\[::1?\\]|0x7f[0-9a-f]{{6}}|2130706433)(?:[:/?#]|$)" \
  "id:9999103,phase:2,block,capture,t:none,t:urlDecodeUni,t:lowercase,\
msg:'SSRF: metadata, loopback or non-HTTP URL in a parameter (after CRS 4 rule 934110)',\
{_LOGDATA},tag:'attack-rfi',tag:'attack-ssrf',{_SCORE}"
SecRule ARGS_NAMES \
  "@rx (?i)(?:^|[.\\[])\\$(?:ne|eq|gte?|lte?|n?in|regex|where|exists|expr|elemmatch|n?or|and|not\
|all|size|type|mod|text)(?:\\]|$)" \
  "id:9999104,phase:2,block,capture,t:none,t:urlDecodeUni,\
msg:'NoSQL injection: query operator as a parameter name (after CRS 4 rule 942290)',\
{_LOGDATA},tag:'attack-sqli',{_SCORE}"
SecRule REQUEST_BODY "@rx (?i)<!(?:entity\\s|doctype[^>\\[]{{0,200}}\\[)" \
  "id:9999105,phase:2,block,capture,t:none,\
msg:'XML external entity or DTD declaration in a request body',\
logdata:'Matched Data: %{{TX.0}} found within REQUEST_BODY',tag:'attack-xxe',{_SCORE}"
"""
