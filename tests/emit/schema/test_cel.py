"""CEL as the API server runs it: the Kubernetes extension functions, and where the engine differs.

Each case is a rule that must hold (or fail with a given error), so it reads like the CRD rules it
protects. Semantics and error texts follow cel-go and `k8s.io/apiserver/pkg/cel/library`.
"""

from __future__ import annotations

from typing import Any

import pytest

from meshrules.emit.schema import cel, library

# -- helpers -----------------------------------------------------------------------------------


def detail(rule: str, value: Any = None, **spec: Any) -> str | None:
    """`None` when `rule` holds with `self` = `value`, else the API server's detail."""
    return cel.evaluate(cel.compile_rule({"rule": rule, **spec}), value, non_ascii=not _ascii(value))


def _ascii(value: Any) -> bool:
    if isinstance(value, str):
        return value.isascii()
    if isinstance(value, dict):
        return all(_ascii(k) and _ascii(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_ascii(v) for v in value)
    return True


def holds(rule: str, value: Any = None) -> bool:
    return detail(rule, value) is None


# -- each extension function ---------------------------------------------------------------------

TRUE_RULES = [
    # strings (cel-go ext.Strings v2)
    "'hello'.charAt(1) == 'e' && 'hello'.charAt(5) == ''",
    "'hello'.indexOf('l') == 2 && 'hello'.indexOf('l', 3) == 3 && 'hello'.indexOf('z') == -1",
    "'héllo'.indexOf('l') == 2",  # code points, not bytes
    "'hello'.lastIndexOf('l') == 3 && 'hello'.lastIndexOf('l', 2) == 2 && 'hello'.lastIndexOf('') == 5",
    "'HeLLo ÀB'.lowerAscii() == 'hello Àb' && 'heLLo àb'.upperAscii() == 'HELLO àB'",
    "'a.b.c'.replace('.', '/') == 'a/b/c' && 'a.b.c'.replace('.', '/', 1) == 'a/b.c'",
    "'a/b/c'.split('/') == ['a', 'b', 'c'] && 'a/b/c'.split('/', 2) == ['a', 'b/c']",
    "'a/b'.split('/', 0) == [] && 'abc'.split('') == ['a', 'b', 'c']",
    "'unix:///x'.substring(7, 8) == '/' && 'hello'.substring(3) == 'lo' && 'héllo'.substring(1, 2) == 'é'",
    "'  \\t hi \\n'.trim() == 'hi'",
    "['a', 'b'].join() == 'ab' && ['a', 'b'].join('-') == 'a-b'",
    # lists (k8s lists.go)
    "[1, 2, 2, 3].isSorted() && !['b', 'a'].isSorted()",
    "[1, 2, 3].sum() == 6 && [1.5, 2.5].sum() == 4.0 && [].sum() == 0",
    "[3, 1, 2].min() == 1 && [3, 1, 2].max() == 3",
    "[1, 2, 1].indexOf(1) == 0 && [1, 2, 1].lastIndexOf(1) == 2 && [1].indexOf(5) == -1",
    # regex (RE2, as Go)
    "'abc 123 def 456'.find('[0-9]+') == '123' && 'abc'.find('[0-9]+') == ''",
    "'abc 123 def 456'.findAll('[0-9]+') == ['123', '456'] && 'a1b2c3'.findAll('[0-9]', 2) == ['1', '2']",
    "'Foo.bar'.matches(r'''^(?i)\\.?[a-z_][a-z_0-9]*(\\.[a-z_][a-z_0-9]*)*$''')",
    "!'abc\\n'.matches('^abc$')",  # Go's `$` does not match before a final newline
    # URLs (Go net/url)
    "isURL('https://example.com:8443/a%20b?x=1&x=2&y=#frag') && isURL('/absolute/path')",
    "!isURL('relative/path') && !isURL('test') && !isURL('#%blah$#@') && !isURL('http://a b')",
    "url('HTTPS://example.com/p').getScheme() == 'https' && url('file:///opt/f.wasm').getScheme() == 'file'",
    "url('https://user@example.com:8443/a').getHost() == 'example.com:8443'",
    "url('https://[::1]:80/').getHostname() == '::1' && url('https://[::1]:80/').getPort() == '80'",
    "url('https://example.com/a%20b').getEscapedPath() == '/a%20b'",
    "url('https://example.com/?x=1&x=2&y=').getQuery() == {'x': ['1', '2'], 'y': ['']}",
    "url('https://example.com').getPort() == '' && url('oci://registry/img:tag').getScheme() == 'oci'",
    # IPs (net/netip)
    "isIP('10.0.0.1') && isIP('::1') && !isIP('010.0.0.1') && !isIP('fe80::1%eth0') && !isIP('::ffff:1.2.3.4')",
    "ip('10.0.0.1').family() == 4 && ip('2001:db8::1').family() == 6",
    "ip('127.0.0.1').isLoopback() && ip('::').isUnspecified() && ip('0.0.0.0').isUnspecified()",
    "ip('10.0.0.1').isGlobalUnicast() && !ip('255.255.255.255').isGlobalUnicast() && !ip('fe80::1').isGlobalUnicast()",
    "ip('224.0.0.1').isLinkLocalMulticast() && ip('ff02::1').isLinkLocalMulticast()",
    "!ip('224.1.0.1').isLinkLocalMulticast() && !ip('ff05::1').isLinkLocalMulticast()",
    "ip('169.254.1.1').isLinkLocalUnicast() && ip('fe80::1').isLinkLocalUnicast()",
    "!ip('10.0.0.1').isLinkLocalUnicast() && !ip('ff02::1').isLinkLocalUnicast()",
    "ip.isCanonical('2001:db8::1') && !ip.isCanonical('2001:DB8::1') && !ip.isCanonical('2001:db8:0::1')",
    "ip('10.0.0.1') == ip('10.0.0.1') && ip('10.0.0.1') != ip('10.0.0.2')",
    # CIDRs
    "isCIDR('10.0.0.0/8') && isCIDR('2001:db8::/32') && !isCIDR('10.0.0.0') && !isCIDR('10.0.0.0/33')",
    "!isCIDR('10.0.0.0/08') && !isCIDR('1.2.3.4/255.0.0.0')",
    "cidr('10.0.0.0/8').containsIP('10.1.2.3') && cidr('10.0.0.0/8').containsIP(ip('10.1.2.3'))",
    "!cidr('10.0.0.0/8').containsIP('11.0.0.1') && !cidr('10.0.0.0/8').containsIP('::1')",
    "cidr('10.0.0.0/8').containsCIDR('10.1.0.0/16') && !cidr('10.1.0.0/16').containsCIDR('10.0.0.0/8')",
    "cidr('10.1.2.3/8').prefixLength() == 8 && cidr('10.1.2.3/8').masked() == cidr('10.0.0.0/8')",
    "cidr('10.1.2.3/8').ip() == ip('10.1.2.3') && cidr('10.1.2.3/8').ip().family() == 4",
    # quantities (resource.Quantity)
    "isQuantity('500m') && isQuantity('1Gi') && isQuantity('1e3') && isQuantity('-1.5') && !isQuantity('1GB')",
    "quantity('1Gi').isGreaterThan(quantity('1G')) && quantity('500m').isLessThan(quantity('1'))",
    "quantity('1k').compareTo(quantity('1000')) == 0 && quantity('1').compareTo(quantity('2')) == -1",
    "quantity('1').add(quantity('500m')) == quantity('1').add(quantity('0.5'))",
    "quantity('2').sub(1).asInteger() == 1 && quantity('1').add(2).asInteger() == 3",
    "quantity('1k').isInteger() && !quantity('500m').isInteger() && quantity('500m').asApproximateFloat() == 0.5",
    "quantity('-5').sign() == -1 && quantity('0').sign() == 0 && quantity('1Ki').asInteger() == 1024",
    # formats (k8s format.go)
    "!format.dns1123Label().validate('my-name').hasValue() && format.dns1123Label().validate('My_Name').hasValue()",
    "format.named('dns1123Subdomain').hasValue() && !format.named('no-such-format').hasValue()",
    "!format.named('dns1123Subdomain').value().validate('a.b-c').hasValue()",
    "format.labelValue().validate('-x').hasValue() && !format.qualifiedName().validate('example.com/Name').hasValue()",
    "!format.uri().validate('https://x').hasValue() && format.uri().validate('x').hasValue()",
    "!format.dns1123LabelPrefix().validate('my-').hasValue() && format.dns1035Label().validate('1abc').hasValue()",
    "!format.uuid().validate('123e4567-e89b-12d3-a456-426614174000').hasValue()",
    "!format.byte().validate('aGk=').hasValue() && format.byte().validate('aGk').hasValue()",
    "!format.date().validate('2024-02-29').hasValue() && format.date().validate('2023-02-29').hasValue()",
    "!format.datetime().validate('2024-01-01T10:00:00Z').hasValue()",
    # durations: Go's time.ParseDuration, and literals untouched
    "duration('1h30m') == duration('90m') && duration('1.5s') > duration('1s') && duration('0') == duration('0s')",
]


@pytest.mark.parametrize("rule", TRUE_RULES)
def test_extension_function(rule: str) -> None:
    assert detail(rule) is None


# -- errors, worded as the API server words them ------------------------------------------------

ERRORS = [
    ("'abc'.substring(2, 1)", "invalid substring range. start: 2, end: 1"),
    ("'abc'.substring(4)", "index out of range: 4"),
    ("'abc'.charAt(9) == ''", "index out of range: 9"),
    ("[].min() == 0", "min called on empty list"),
    ("url('test').getScheme() == ''", "URL parse error during conversion from string: invalid URI for request"),
    ("ip('1.2.3.4%eth0').family() == 4", 'IP address "1.2.3.4%eth0" with zone value is not allowed'),
    ("ip('::ffff:1.2.3.4').family() == 6", 'IPv4-mapped IPv6 address "::ffff:1.2.3.4" is not allowed'),
    ("quantity('1GB').sign() == 1", "quantities must match the regular expression"),
    ("quantity('500m').asInteger() == 0", "cannot convert value to integer"),
    ("int(self) > 0", "type conversion error from 'string' to 'int'"),
    ("self.value == ''", "no such key: value"),
    ("'a'.substring('b') == ''", "no such overload"),
]


@pytest.mark.parametrize(("rule", "error"), ERRORS)
def test_runtime_error_is_reported_like_the_api_server(rule: str, error: str) -> None:
    value: Any = "acd" if "int(self)" in rule else {}
    text = detail(rule, value, message="the rule's message")
    assert text is not None
    assert error in text
    assert text.endswith("evaluating rule: the rule's message")


@pytest.mark.parametrize("value", ["1h 2m", "1e3s", "1d", "apple", "", "9999999999h", "1.5.s"])
def test_duration_of_a_field_follows_go_not_the_engine(value: str) -> None:
    # The engine alone accepts "1h 2m" (reading "1h") and "1e3s"; Go refuses both.
    text = detail("duration(self) >= duration('1ms')", value, message="must be a valid duration greater than 1ms")
    assert text is not None
    assert "type conversion error from 'string' to 'google.protobuf.Duration'" in text


@pytest.mark.parametrize(("value", "holds_"), [("300ms", True), ("1µs", False), ("2562047h", True), ("-1s", False)])
def test_duration_of_a_field_accepts_go_syntax(value: str, holds_: bool) -> None:
    assert holds("duration(self) >= duration('1ms')", value) is holds_


def test_go_duration_parser() -> None:
    ns = library.go_duration_ns
    assert ns("1h2m3.5s") == (3600 + 120 + 3.5) * 10**9
    assert ns(".5us") == 500
    assert ns("1.000000001s") == 1_000_000_001
    assert ns("-1.5h") == -5400 * 10**9
    assert ns("1") is None and ns("h") is None and ns("+-1s") is None


def test_format_validate_is_an_optional_like_cel_go() -> None:
    # cel-go: validate() is optional.none() when valid, and no optional equals null. So a rule
    # written `format.dns1123Label().validate(self) == null` (Gateway API's XBackend) refuses
    # every non-empty value on a real API server too; the validator reproduces that.
    assert not holds("format.dns1123Label().validate(self) == null", "valid-name")
    assert holds("!format.dns1123Label().validate(self).hasValue()", "valid-name")
    assert holds("format.dns1123Label().validate(self).value().size() > 0", "Invalid_Name")


# -- what the engine does differently, and the rewriting that fixes it ----------------------------


def test_size_counts_code_points_for_non_ascii_text() -> None:
    # The engine counts UTF-8 bytes (`size('héllo') == 6`); cel-go counts code points.
    assert holds("size(self) == 5 && self.size() == 5", "héllo")
    assert holds("size(self) == 5 && self.size() == 5", "hello")
    assert holds("self.all(k, size(k) == 2)", {"éé": 1, "ab": 2})


def test_rewrite_leaves_string_literals_and_literal_durations_alone() -> None:
    src = "self.matches('x.matches(y)') && duration('1s') > duration(self.a) && \"size(\" != ''"
    out = cel.rewrite(src, exact_size=True)
    assert "'x.matches(y)'" in out and '"size("' in out
    assert "self._k8s_matches(" in out
    assert "duration('1s')" in out
    assert "duration(_k8s_duration(self.a))" in out


def test_rewrite_wraps_nested_duration_arguments() -> None:
    out = cel.rewrite("duration(has(self.x) ? self.x : (self.y)) == duration(r'''0s''')")
    assert out == "duration(_k8s_duration(has(self.x) ? self.x : (self.y))) == duration(r'''0s''')"


@pytest.mark.parametrize(
    ("name", "escaped"),
    [
        ("namespace", "__namespace__"),
        ("in", "__in__"),
        ("foo__bar", "foo__underscores__bar"),
        ("a.b-c/d", "a__dot__b__dash__c__slash__d"),
        ("plain", "plain"),
        ("has space", None),
        ("@type", None),
    ],
)
def test_property_names_are_escaped_as_the_api_server_does(name: str, escaped: str | None) -> None:
    assert cel.escape_property(name) == escaped


# -- rule options ---------------------------------------------------------------------------------


def test_message_and_default_message() -> None:
    assert detail("self > 1", 0, message="  too small ") == "too small"
    assert detail("self > 1", 0) == "failed rule: self > 1"


def test_message_expression_is_used_when_it_gives_a_line() -> None:
    assert detail("self > 1", 0, messageExpression="'got ' + string(self)") == "got 0"
    # An empty or failing messageExpression falls back to the message.
    assert detail("self > 1", 0, message="m", messageExpression="''") == "m"
    assert detail("self > 1", 0, message="m", messageExpression="self.nope") == "m"


def test_transition_rules_are_not_run_on_create() -> None:
    rule = cel.compile_rule({"rule": "self == oldSelf", "message": "immutable"})
    assert rule.transition
    assert cel.evaluate_all((rule,), "x") == []


def test_optional_old_self_rules_run_with_no_old_object() -> None:
    rule = "!oldSelf.hasValue() || self == oldSelf.value()"
    assert not cel.compile_rule({"rule": rule, "optionalOldSelf": True}).transition
    assert detail(rule, "x", optionalOldSelf=True) is None


def test_non_boolean_result_is_an_error() -> None:
    text = detail("self + 1", 1)
    assert text is not None and "did not evaluate to a bool" in text


def test_compile_error_names_the_rule() -> None:
    with pytest.raises(cel.CelCompileError, match="self >"):
        cel.compile_rule({"rule": "self >"})


def test_identical_rules_compile_once() -> None:
    spec = {"rule": "self.size() > 0", "message": "not empty"}
    assert cel.compile_rule(spec) is cel.compile_rule(dict(spec))


def test_error_absorbed_by_an_earlier_rule_does_not_leak() -> None:
    # `url('x')` fails inside `||`, which CEL absorbs; the next rule's error must be its own.
    first = cel.compile_rule({"rule": "isURL('x') || true || url('x').getScheme() == ''"})
    second = cel.compile_rule({"rule": "self.nope == 1", "message": "m"})
    failed = cel.evaluate_all((first, second), {})
    assert [(r.rule, d) for r, d in failed] == [(second.rule, "no such key: nope evaluating rule: m")]
