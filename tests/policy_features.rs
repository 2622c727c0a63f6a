//! The policy model's features one by one, on small policies written in TOML: each kind
//! of condition, composite keys and every `on_missing`, shadow limits, which limit
//! decides, the counters, earlier versions' key names, and the configuration errors of
//! each new field.

use ratecore::policy::{Attribute, Policy, PolicyDecision, Request};

const SECOND: u64 = 1_000_000_000;

fn policy(rules: &str) -> Policy {
    let text = format!("[table]\ncapacity = 1024\n{rules}");
    Policy::from_toml_str(&text, "test.toml").unwrap_or_else(|e| panic!("{e}"))
}

fn error(rules: &str) -> String {
    Policy::from_toml_str(rules, "bad.toml")
        .unwrap_err()
        .to_string()
}

fn check<'p>(policy: &'p Policy, attributes: &[(&str, &str)], now: u64) -> PolicyDecision<'p> {
    let attributes: Vec<Attribute<'_>> = attributes
        .iter()
        .map(|(n, v)| Attribute::new(n, v.as_bytes()))
        .collect();
    policy
        .check(&Request::new("GET", "/", &attributes), now, 1)
        .unwrap()
}

/// How many of `n` requests with `attributes` at `now` are admitted.
fn admitted(policy: &Policy, attributes: &[(&str, &str)], now: u64, n: usize) -> usize {
    (0..n)
        .filter(|_| check(policy, attributes, now).allowed())
        .count()
}

const ONE_PER_MINUTE: &str = "algorithm = \"fixed_window\"\nlimit = 1\nperiod = \"1m\"\n";

/// A condition, the request's attributes, and whether the rule applies.
type ConditionCase = (&'static str, &'static [(&'static str, &'static str)], bool);

#[test]
fn each_kind_of_condition() {
    let cases: [ConditionCase; 12] = [
        ("tier = \"free\"", &[("tier", "free")], true),
        ("tier = \"free\"", &[("tier", "gold")], false),
        ("tier = \"free\"", &[], false),
        ("tier = [\"free\", \"trial\"]", &[("tier", "trial")], true),
        ("tier = [\"free\", \"trial\"]", &[("tier", "gold")], false),
        ("tier = { not_in = [\"gold\"] }", &[("tier", "free")], true),
        ("tier = { not_in = [\"gold\"] }", &[("tier", "gold")], false),
        ("tier = { not_in = [\"gold\"] }", &[], true),
        ("tier = { present = true }", &[("tier", "")], true),
        ("tier = { present = true }", &[], false),
        ("tier = { present = false }", &[], true),
        ("tier = { equals = \"free\" }", &[("tier", "free")], true),
    ];
    for (condition, attributes, applies) in cases {
        let p = policy(&format!(
            "[[rule]]\nname = \"r\"\nwhen = {{ {condition} }}\n[[rule.limit]]\nkey = []\n{ONE_PER_MINUTE}"
        ));
        let first = check(&p, attributes, SECOND);
        assert_eq!(first.limited(), applies, "{condition} on {attributes:?}");
        assert_eq!(
            check(&p, attributes, SECOND).allowed(),
            !applies,
            "{condition} on {attributes:?}"
        );
    }
}

#[test]
fn conditions_combine_with_and() {
    let p = policy(&format!(
        "[[rule]]\nname = \"r\"\nwhen = {{ auth = \"client_credentials\", tier = {{ not_in = [\"gold\"] }} }}\n[[rule.limit]]\nkey = []\n{ONE_PER_MINUTE}"
    ));
    assert!(!check(&p, &[("auth", "client_credentials"), ("tier", "gold")], 1).limited());
    assert!(!check(&p, &[("tier", "free")], 1).limited());
    assert!(check(&p, &[("auth", "client_credentials")], 1).limited());
}

#[test]
fn composite_keys_and_on_missing() {
    let rules = |on_missing: &str| {
        policy(&format!(
            "[[rule]]\nname = \"r\"\n[[rule.limit]]\nname = \"l\"\nkey = [\"app\", \"user\"]\non_missing = \"{on_missing}\"\n{ONE_PER_MINUTE}"
        ))
    };
    // Each (app, user) pair is its own key; parts never run together.
    let p = rules("skip");
    assert_eq!(admitted(&p, &[("app", "ab"), ("user", "c")], 1, 3), 1);
    assert_eq!(admitted(&p, &[("app", "a"), ("user", "bc")], 1, 3), 1);
    assert_eq!(admitted(&p, &[("user", "c"), ("app", "ab")], 1, 3), 0);
    // skip: a request without a user is not limited, and the counters say so.
    let d = check(&p, &[("app", "ab")], 1);
    assert!(d.allowed() && !d.limited());
    let (_, metrics) = p.metrics().next().unwrap();
    assert_eq!(
        (metrics.allowed, metrics.denied, metrics.skipped),
        (2, 7, 1)
    );

    // shared: requests without a user share their app's counter, apart from every
    // user's (and from an empty user name).
    let p = rules("shared");
    assert_eq!(admitted(&p, &[("app", "a")], 1, 3), 1);
    assert_eq!(admitted(&p, &[("app", "a"), ("user", "")], 1, 3), 1);
    assert_eq!(admitted(&p, &[("app", "b")], 1, 3), 1);
    assert_eq!(admitted(&p, &[], 1, 3), 1);

    // deny: refused, naming the limit, consuming nothing elsewhere; the period is the
    // retry (the request will not improve by waiting, and a client is never told to
    // come back too early).
    let p = policy(&format!(
        "[[rule]]\nname = \"r\"\n[[rule.limit]]\nname = \"ip\"\nkey = [\"client_ip\"]\non_missing = \"skip\"\n{ONE_PER_MINUTE}\n[[rule.limit]]\nname = \"l\"\nkey = [\"app\", \"user\"]\non_missing = \"deny\"\n{ONE_PER_MINUTE}"
    ));
    let d = check(&p, &[("client_ip", "1.2.3.4"), ("app", "a")], 1);
    assert!(!d.allowed() && d.limited() && d.denied_for_missing_key());
    assert_eq!(d.deciding().unwrap().name, "l");
    assert_eq!(d.decision().retry_after, 60 * SECOND);
    assert_eq!(d.decision().remaining, 0);
    let ip = d.entries().find(|(l, _)| l.name == "ip").unwrap().1;
    assert!(
        ip.allowed && ip.remaining == 1,
        "peeked, not charged: {ip:?}"
    );
    let full = [("client_ip", "1.2.3.4"), ("app", "a"), ("user", "u")];
    assert!(check(&p, &full, 1).allowed());
    let d = check(&p, &full, 1);
    assert!(!d.allowed() && !d.denied_for_missing_key());
}

#[test]
fn shadow_limits_count_but_never_deny() {
    let p = policy(&format!(
        "[[rule]]\nname = \"real\"\n[[rule.limit]]\nname = \"two\"\nkey = [\"ip\"]\non_missing = \"skip\"\nalgorithm = \"fixed_window\"\nlimit = 2\nperiod = \"1m\"\n\n[[rule]]\nname = \"trial\"\nshadow = true\n[[rule.limit]]\nname = \"one\"\nkey = [\"ip\"]\non_missing = \"skip\"\n{ONE_PER_MINUTE}"
    ));
    let ip = [("ip", "1.2.3.4")];
    let first = check(&p, &ip, 1);
    assert!(first.allowed() && first.shadow_denied().is_none());
    let second = check(&p, &ip, 1);
    assert!(second.allowed(), "a shadow limit never denies");
    let (would, state) = second.shadow_denied().unwrap();
    assert_eq!(
        (would.rule, would.name, would.shadow),
        ("trial", "one", true)
    );
    assert!(!state.allowed);
    // No headers for shadow limits: only the real one is reported.
    assert_eq!(second.entries().count(), 1);
    assert_eq!(second.deciding().unwrap().name, "two");
    let mut headers = [0u8; 512];
    let n = second.render_headers(0, &mut headers).unwrap();
    let text = std::str::from_utf8(&headers[..n]).unwrap();
    assert!(
        text.contains("\"two\"") && !text.contains("\"one\""),
        "{text}"
    );
    // The real denial leaves the shadow limit untouched.
    let third = check(&p, &ip, 1);
    assert!(!third.allowed());
    assert_eq!(third.deciding().unwrap().name, "two");
    let metrics: Vec<_> = p.metrics().map(|(l, m)| (l.name, m)).collect();
    assert_eq!(metrics[0].1.allowed, 2);
    assert_eq!(metrics[0].1.denied, 1);
    assert_eq!(metrics[1].1.allowed, 1);
    assert_eq!(metrics[1].1.shadow_denied, 2);
    assert_eq!(metrics[1].1.denied, 0);
}

#[test]
fn a_shadow_limit_a_cost_can_never_fit_is_a_shadow_denial_not_an_error() {
    let p = policy(&format!(
        "[[rule]]\nname = \"trial\"\n[[rule.limit]]\nname = \"one\"\nkey = []\nshadow = true\n{ONE_PER_MINUTE}"
    ));
    let d = p.check(&Request::new("GET", "/", &[]), 1, 5).unwrap();
    assert!(d.allowed());
    assert_eq!(d.shadow_denied().unwrap().0.name, "one");
}

#[test]
fn the_first_limit_in_policy_order_decides_ties() {
    // Two limits deny with the same retry_after: the first in policy order decides,
    // whatever their other fields (here `remaining`: 0 and 1).
    let p = policy(
        "[[rule]]\nname = \"a\"\n[[rule.limit]]\nname = \"small\"\nkey = []\nalgorithm = \"fixed_window\"\nlimit = 2\nperiod = \"1m\"\n\n[[rule]]\nname = \"b\"\n[[rule.limit]]\nname = \"large\"\nkey = []\nalgorithm = \"fixed_window\"\nlimit = 3\nperiod = \"1m\"\n",
    );
    let request = Request::new("GET", "/", &[]);
    assert!(p.check(&request, 1, 2).unwrap().allowed());
    let d = p.check(&request, 1, 2).unwrap();
    assert!(!d.allowed());
    assert_eq!(d.deciding().unwrap().name, "small");
    let p = policy(
        "[[rule]]\nname = \"b\"\n[[rule.limit]]\nname = \"large\"\nkey = []\nalgorithm = \"fixed_window\"\nlimit = 3\nperiod = \"1m\"\n\n[[rule]]\nname = \"a\"\n[[rule.limit]]\nname = \"small\"\nkey = []\nalgorithm = \"fixed_window\"\nlimit = 2\nperiod = \"1m\"\n",
    );
    assert!(p.check(&request, 1, 2).unwrap().allowed());
    let d = p.check(&request, 1, 2).unwrap();
    assert_eq!(d.deciding().unwrap().name, "large");
}

#[test]
fn unlimited_rules_exempt_whatever_their_position() {
    let p = policy(&format!(
        "[[rule]]\nname = \"all\"\n[[rule.limit]]\nkey = []\n{ONE_PER_MINUTE}\n[[rule]]\nname = \"staff\"\nwhen = {{ role = \"staff\" }}\nunlimited = true\n"
    ));
    for _ in 0..3 {
        let d = check(&p, &[("role", "staff")], 1);
        assert!(d.allowed() && !d.limited());
        assert_eq!(d.exempted_by(), Some("staff"));
    }
    assert!(check(&p, &[], 1).allowed());
    assert!(!check(&p, &[], 1).allowed());
    assert_eq!(p.metrics().next().unwrap().1.checked(), 2);
}

#[test]
fn earlier_key_names_keep_their_meaning() {
    let legacy = policy(&format!(
        "[[rule]]\nname = \"r\"\n[[rule.limit]]\nkey = \"app_user\"\n{ONE_PER_MINUTE}"
    ));
    let limit = legacy.rules().next().unwrap().limits[0].clone();
    assert_eq!(limit.key, ["app", "user"]);
    assert_eq!(limit.name, "r-app_user");
    assert_eq!(limit.on_missing, ratecore::policy::OnMissing::Skip);
    assert!(check(&legacy, &[("app", "a"), ("user", "u")], 1).allowed());
    assert!(!check(&legacy, &[("app", "a"), ("user", "u")], 1).allowed());
    assert!(!check(&legacy, &[("app", "a")], 1).limited());
}

#[test]
fn first_occurrence_of_an_attribute_counts() {
    let p = policy(&format!(
        "[[rule]]\nname = \"r\"\nwhen = {{ auth = \"client_credentials\" }}\n[[rule.limit]]\nkey = []\n{ONE_PER_MINUTE}"
    ));
    assert!(!check(
        &p,
        &[("auth", "personal_token"), ("auth", "client_credentials")],
        1
    )
    .limited());
    assert!(check(
        &p,
        &[("auth", "client_credentials"), ("auth", "personal_token")],
        1
    )
    .limited());
}

#[test]
fn memory_is_reported() {
    let p = policy(&format!(
        "[[rule]]\nname = \"r\"\n[[rule.limit]]\nkey = [\"ip\"]\non_missing = \"skip\"\n{ONE_PER_MINUTE}"
    ));
    // 1024 key slots of 16 bytes, and the empty-key tables are not made.
    assert!(p.memory_bytes() >= 1024 * 16, "{}", p.memory_bytes());
    assert!(p.memory_bytes() < 1024 * 16 * 2, "{}", p.memory_bytes());
}

#[test]
fn new_fields_fail_with_file_line_column_and_field() {
    let limit = "algorithm = \"fixed_window\"\nlimit = 1\nperiod = \"1m\"\n";
    let cases: [(String, &str); 9] = [
        (
            format!("[[rule]]\nname = \"r\"\n[[rule.limit]]\nkey = [\"app\", \"user\"]\n{limit}"),
            "bad.toml:4:7: rule[0].limit[0].on_missing: a request may lack key attribute \"app\": say what it gets with on_missing = \"skip\", \"shared\" or \"deny\" (or require it with when = { app = { present = true } })",
        ),
        (
            format!("[[rule]]\nname = \"r\"\n[[rule.limit]]\nkey = [\"app\"]\non_missing = \"maybe\"\n{limit}"),
            "bad.toml:5:14: rule[0].limit[0].on_missing: unknown value \"maybe\" (use skip, shared or deny)",
        ),
        (
            format!("[[rule]]\nname = \"r\"\n[[rule.limit]]\nkey = \"tenant\"\n{limit}"),
            "bad.toml:4:7: rule[0].limit[0].key: unknown key \"tenant\": key on attributes with key = [\"tenant\"] (or one of the names global, client_ip, user, app_user, client)",
        ),
        (
            format!("[[rule]]\nname = \"r\"\n[[rule.limit]]\nkey = [\"a b\"]\non_missing = \"skip\"\n{limit}"),
            "bad.toml:4:7: rule[0].limit[0].key: bad attribute name \"a b\": use ASCII letters, digits, '_', '-', '.' or ':'",
        ),
        (
            format!("[[rule]]\nname = \"r\"\nwhen = {{ tier = 3 }}\n[[rule.limit]]\nkey = []\n{limit}"),
            "bad.toml:3:17: rule[0].when.tier: a condition is \"value\", [\"one\", \"of\"], { not_in = [...] } or { present = true|false }",
        ),
        (
            format!("[[rule]]\nname = \"r\"\nwhen = {{ tier = [\"a\", 1] }}\n[[rule.limit]]\nkey = []\n{limit}"),
            "bad.toml:3:17: rule[0].when.tier: the values must be strings",
        ),
        (
            format!("[[rule]]\nname = \"r\"\nwhen = {{ tier = {{ present = true, in = [] }} }}\n[[rule.limit]]\nkey = []\n{limit}"),
            "bad.toml:3:17: rule[0].when.tier: a condition is \"value\", [\"one\", \"of\"], { not_in = [...] } or { present = true|false }",
        ),
        (
            format!("[[rule]]\nname = \"r\"\n[[rule.limit]]\nname = \"x\"\nkey = []\n{limit}[[rule.limit]]\nname = \"x\"\nkey = []\n{limit}"),
            "bad.toml:10:8: rule[0].limit[1].name: limit name \"x\" is used twice in this rule: give each limit its own name",
        ),
        (
            format!("[[rule]]\nname = \"r\"\n[[rule.limit]]\nkey = [\"a\", \"a\"]\non_missing = \"skip\"\n{limit}"),
            "bad.toml:0:0: rule \"r\", limit \"r-a-a\": a key is at most 8 distinct attributes",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(error(&text), expected, "{text}");
    }
}

#[test]
fn a_condition_guaranteeing_the_key_makes_on_missing_optional() {
    let p = policy(&format!(
        "[[rule]]\nname = \"r\"\nwhen = {{ app = {{ present = true }}, user = [\"u\", \"v\"] }}\n[[rule.limit]]\nkey = [\"app\", \"user\"]\n{ONE_PER_MINUTE}"
    ));
    assert!(check(&p, &[("app", "a"), ("user", "u")], 1).allowed());
    assert!(!check(&p, &[("app", "a"), ("user", "u")], 1).allowed());
    assert!(!check(&p, &[("app", "a")], 1).limited());
}

#[test]
fn shadow_limits_count_toward_the_limit_maximum() {
    let mut text = String::new();
    for i in 0..17 {
        text += &format!(
            "[[rule]]\nname = \"r{i}\"\nshadow = {}\n[[rule.limit]]\nkey = []\n{ONE_PER_MINUTE}",
            i % 2 == 0
        );
    }
    assert!(error(&text).contains("too many limits"), "{}", error(&text));
}

#[test]
fn metrics_export_in_the_prometheus_text_format() {
    let p = policy(&format!(
        "[[rule]]\nname = \"say \\\"hi\\\"\\nback\\\\slash\"\n[[rule.limit]]\nname = \"one\"\nkey = [\"ip\"]\non_missing = \"skip\"\n{ONE_PER_MINUTE}\n[[rule.limit]]\nname = \"trial\"\nkey = []\nshadow = true\n{ONE_PER_MINUTE}"
    ));
    assert!(check(&p, &[("ip", "a")], 1).allowed());
    assert!(!check(&p, &[("ip", "a")], 1).allowed());
    assert!(check(&p, &[], 1).allowed());
    let mut out = vec![0u8; 4096];
    let n = p.render_metrics(&mut out).unwrap();
    let text = String::from_utf8(out[..n].to_vec()).unwrap();
    let rule = r#"rule="say \"hi\"\nback\\slash""#;
    let expected = format!(
        "# HELP ratecore_policy_requests_total Requests each policy limit applied to, by what the limit did.\n\
         # TYPE ratecore_policy_requests_total counter\n\
         ratecore_policy_requests_total{{{rule},limit=\"one\",shadow=\"false\",outcome=\"allowed\"}} 1\n\
         ratecore_policy_requests_total{{{rule},limit=\"one\",shadow=\"false\",outcome=\"denied\"}} 1\n\
         ratecore_policy_requests_total{{{rule},limit=\"one\",shadow=\"false\",outcome=\"shadow_denied\"}} 0\n\
         ratecore_policy_requests_total{{{rule},limit=\"one\",shadow=\"false\",outcome=\"skipped\"}} 1\n\
         ratecore_policy_requests_total{{{rule},limit=\"trial\",shadow=\"true\",outcome=\"allowed\"}} 1\n\
         ratecore_policy_requests_total{{{rule},limit=\"trial\",shadow=\"true\",outcome=\"denied\"}} 0\n\
         ratecore_policy_requests_total{{{rule},limit=\"trial\",shadow=\"true\",outcome=\"shadow_denied\"}} 2\n\
         ratecore_policy_requests_total{{{rule},limit=\"trial\",shadow=\"true\",outcome=\"skipped\"}} 0\n"
    );
    assert_eq!(text, expected);
    // A short buffer learns the exact length.
    assert_eq!(p.render_metrics(&mut out[..10]).unwrap_err().needed, n);

    // Prometheus's own checker accepts it (Debian's `prometheus` package; CI installs
    // it, elsewhere the check is skipped with a notice).
    let promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match promtool {
        Ok(child) => child,
        Err(e) => {
            assert!(std::env::var_os("CI").is_none(), "CI needs promtool: {e}");
            eprintln!("skipped promtool check: {e}");
            return;
        }
    };
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_limit_maximum_counts_only_rules_one_request_can_meet() {
    let rule = |name: &str, extra: &str| {
        format!("[[rule]]\nname = \"{name}\"\n{extra}[[rule.limit]]\nkey = []\n{ONE_PER_MINUTE}")
    };
    // 20 rules on distinct routes (a literal segment or the method tells them apart),
    // plus one for every request: at most 2 limits per request.
    let mut text = rule("all", "");
    for i in 0..10 {
        text += &rule(
            &format!("get-{i}"),
            &format!("route = \"GET /items/{i}/:id\"\n"),
        );
        text += &rule(
            &format!("post-{i}"),
            &format!("route = \"POST /items/{i}/:id\"\n"),
        );
    }
    let p = policy(&text);
    let d = p
        .check(&Request::new("POST", "/items/3/x", &[]), 1, 1)
        .unwrap();
    assert_eq!(d.entries().count(), 2);
    // Conditions on one attribute that cannot both hold also tell rules apart.
    let mut text = String::new();
    for i in 0..20 {
        text += &rule(
            &format!("tier-{i}"),
            &format!("when = {{ tier = \"t{i}\" }}\n"),
        );
    }
    for (i, extra) in [
        "when = { tier = { present = false } }\n",
        "when = { tier = [\"t0\", \"t1\"], plan = \"x\" }\n",
    ]
    .iter()
    .enumerate()
    {
        text += &rule(&format!("more-{i}"), extra);
    }
    policy(&text);
    // Routes that overlap (a parameter, a `*`) and conditions that do not exclude each
    // other (not_in, other attributes) do not.
    let mut text = String::new();
    for (i, extra) in [
        "route = \"GET /items/:id\"\n",
        "route = \"GET /items/7\"\n",
        "route = \"ALL /items/*\"\n",
        "route = \"/items/:id\"\n",
        "when = { tier = { not_in = [\"t1\"] } }\n",
        "when = { plan = \"x\" }\n",
    ]
    .iter()
    .cycle()
    .take(17)
    .enumerate()
    {
        text += &rule(&format!("r{i}"), extra);
    }
    let e = error(&format!("[[rule]]\nname = \"z\"\nroute = \"GET /items/7\"\nwhen = {{ tier = \"t0\", plan = \"x\" }}\n[[rule.limit]]\nkey = []\n{ONE_PER_MINUTE}{text}"));
    assert!(e.contains("too many limits"), "{e}");
}

/// RFC 9457: a problem+json body's `status` member is the response's status, also when
/// a policy answers denials with another status than 429.
#[test]
fn a_problem_body_repeats_the_configured_status() {
    let text = format!(
        "[response]\nstatus = 503\nbody = \"problem+json\"\n[table]\ncapacity = 1024\n{}",
        "[[rule]]\nname = \"all\"\n[[rule.limit]]\nname = \"global\"\nkey = []\n"
    ) + ONE_PER_MINUTE;
    let policy = Policy::from_toml_str(&text, "test.toml").unwrap_or_else(|e| panic!("{e}"));
    assert!(check(&policy, &[], 0).allowed());
    let denied = check(&policy, &[], 0);
    assert!(!denied.allowed());
    assert_eq!(denied.denial_status(), 503);
    let mut body = [0u8; 512];
    let n = denied.render_body(&mut body).unwrap();
    let text = std::str::from_utf8(&body[..n]).unwrap();
    assert!(text.contains("\"status\": 503,"), "{text}");
}

/// `check_with` reads the decision `check` returns, for a policy of one limit (checked
/// with one table lookup) and for one the general check decides, admissions, denials
/// (with their bodies), a missing key and an impossible cost alike; and it counts
/// what it decides.
#[test]
fn check_with_reads_what_check_returns() {
    let one = "[[rule]]\nname = \"all\"\n[[rule.limit]]\nname = \"per-ip\"\n\
               key = [\"client_ip\"]\non_missing = \"shared\"\n"
        .to_owned()
        + ONE_PER_MINUTE;
    let two = format!(
        "{one}[[rule.limit]]\nname = \"per-user\"\nkey = [\"user\"]\non_missing = \"deny\"\n\
         algorithm = \"gcra\"\nlimit = 2\nperiod = \"1m\"\n"
    );
    /// What a test can compare of a decision.
    fn seen(d: &PolicyDecision<'_>) -> String {
        let mut buf = [0u8; 1024];
        let body = (!d.allowed()).then(|| {
            let len = d.render_body(&mut buf).unwrap();
            buf[..len].to_vec()
        });
        let entries: Vec<_> = d.entries().map(|(l, s)| (l.id, s)).collect();
        let deciding = d.deciding().map(|l| (l.id, l.name));
        let missing = d.denied_for_missing_key();
        format!(
            "{:?} {deciding:?} {entries:?} {missing} {body:?}",
            d.decision()
        )
    }
    for rules in [one, two] {
        let (returned, read) = (policy(&rules), policy(&rules));
        for (i, attributes) in [
            &[("client_ip", "a"), ("user", "u")][..],
            &[("client_ip", "a")],
            &[("user", "u")],
        ]
        .iter()
        .cycle()
        .take(9)
        .enumerate()
        {
            let attributes: Vec<Attribute<'_>> = attributes
                .iter()
                .map(|(n, v)| Attribute::new(n, v.as_bytes()))
                .collect();
            let request = Request::new("GET", "/", &attributes);
            let now = u64::try_from(i).unwrap() * SECOND;
            for cost in [1, 5] {
                let want = returned.check(&request, now, cost).map(|d| seen(&d));
                let got = read.check_with(&request, now, cost, seen);
                assert_eq!(got, want, "{rules} request {i} cost {cost}");
            }
        }
        assert_eq!(
            format!("{:?}", returned.metrics()),
            format!("{:?}", read.metrics()),
            "{rules}"
        );
    }
}
