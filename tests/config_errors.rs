//! Every malformed policy configuration gets a precise error: file, line, column, field
//! and message — asserted in full.

use ratecore::policy::{ConfigError, Policy};

const GOOD_LIMIT: &str = "key = \"client_ip\"\nlimit = 10\nperiod = \"1m\"\n";

fn error(text: &str) -> ConfigError {
    Policy::from_toml_str(text, "bad.toml").unwrap_err()
}

#[test]
fn table_of_bad_inputs() {
    let cases: &[(&str, &str)] = &[
        (
            "[[rule]]\nname = \"a\"\ncolour = \"red\"\n[[rule.limit]]\nkey = \"user\"\nlimit = 1\nperiod = \"1s\"\n",
            "bad.toml:3:1: unknown field `colour`, expected one of `name`, `route`, `description`, `unlimited`, `shadow`, `when`, `limit`",
        ),
        (
            "[[rule]]\nname = \"a\"\n[[rule.limit]]\nkey = \"user\"\nlimit = 0\nperiod = \"1s\"\n",
            "bad.toml:5:9: rule[0].limit[0].limit: limit must be at least 1",
        ),
        (
            "[[rule]]\nname = \"a\"\n[[rule.limit]]\nkey = \"user\"\nlimit = 5\nperiod = \"5 fortnights\"\n",
            "bad.toml:6:10: rule[0].limit[0].period: bad duration \"5 fortnights\": unknown unit \"fortnights\" (use ns, us, ms, s, m, h or d)",
        ),
        (
            "[[rule]]\nname = \"a\"\n[[rule.limit]]\nkey = \"user\"\nlimit = 5\nperiod = \"m\"\n",
            "bad.toml:6:10: rule[0].limit[0].period: bad duration \"m\": expected a number then a unit, like \"5m\"",
        ),
        (
            "[[rule]]\nname = \"a\"\n[[rule.limit]]\nkey = \"user\"\nlimit = 5\nperiod = \"0s\"\n",
            "bad.toml:6:10: rule[0].limit[0].period: bad duration \"0s\": must be longer than 0",
        ),
        (
            "[[rule]]\nname = \"a\"\nroute = \"POST /cards//x\"\n[[rule.limit]]\nkey = \"user\"\nlimit = 5\nperiod = \"1s\"\n",
            "bad.toml:3:9: rule[0].route: route path \"/cards//x\" has an empty segment",
        ),
        (
            "[[rule]]\nname = \"a\"\nroute = \"POST cards\"\n[[rule.limit]]\nkey = \"user\"\nlimit = 5\nperiod = \"1s\"\n",
            "bad.toml:3:9: rule[0].route: route path \"cards\" must start with '/'",
        ),
        (
            "[[rule]]\nname = \"a\"\n[[rule.limit]]\nkey = \"user\"\nlimit = 5\nperiod = \"1s\"\n[[rule]]\nname = \"a\"\n[[rule.limit]]\nkey = \"user\"\nlimit = 5\nperiod = \"1s\"\n",
            "bad.toml:8:8: rule[1].name: duplicate rule name \"a\"",
        ),
        (
            "[[rule]]\nname = \"a\"\n[[rule.limit]]\nkey = \"user\"\nalgorithm = \"leaky_bucket\"\nlimit = 5\nperiod = \"1s\"\n",
            "bad.toml:5:13: rule[0].limit[0].algorithm: unknown algorithm \"leaky_bucket\" (use gcra, fixed_window, sliding_window or sliding_window_strict)",
        ),
        (
            "[[rule]]\nname = \"a\"\n[[rule.limit]]\nkey = \"mac_address\"\nlimit = 5\nperiod = \"1s\"\n",
            "bad.toml:4:7: rule[0].limit[0].key: unknown key \"mac_address\": key on attributes with key = [\"mac_address\"] (or one of the names global, client_ip, user, app_user, client)",
        ),
        (
            "[[rule]]\nname = \"a\"\n[[rule.limit]]\nkey = [\"mac address\"]\non_missing = \"skip\"\nlimit = 5\nperiod = \"1s\"\n",
            "bad.toml:4:7: rule[0].limit[0].key: bad attribute name \"mac address\": use ASCII letters, digits, '_', '-', '.' or ':'",
        ),
        (
            "[[rule]]\nname = \"a\"\n[[rule.limit]]\nkey = [\"app\", \"user\"]\nlimit = 5\nperiod = \"1s\"\n",
            "bad.toml:4:7: rule[0].limit[0].on_missing: a request may lack key attribute \"app\": say what it gets with on_missing = \"skip\", \"shared\" or \"deny\" (or require it with when = { app = { present = true } })",
        ),
        (
            "[[rule]]\nname = \"a\"\nwhen = { auth = \"client_credentials\" }\n[[rule.limit]]\nkey = [\"auth\", \"app\"]\non_missing = \"defer\"\nlimit = 5\nperiod = \"1s\"\n",
            "bad.toml:6:14: rule[0].limit[0].on_missing: unknown value \"defer\" (use skip, shared or deny)",
        ),
        (
            "[[rule]]\nname = \"a\"\nwhen = { auth = { equal = \"x\" } }\n[[rule.limit]]\nkey = [\"app\"]\non_missing = \"deny\"\nlimit = 5\nperiod = \"1s\"\n",
            "bad.toml:3:17: rule[0].when.auth: a condition is \"value\", [\"one\", \"of\"], { not_in = [...] } or { present = true|false }",
        ),
        (
            "[[rule]]\nname = \"a\"\nwhen = { auth = [\"x\", 3] }\n[[rule.limit]]\nkey = [\"app\"]\non_missing = \"deny\"\nlimit = 5\nperiod = \"1s\"\n",
            "bad.toml:3:17: rule[0].when.auth: the values must be strings",
        ),
        (
            "[[rule]]\nname = \"a\"\n[[rule.limit]]\nkey = \"user\"\nlimit = 5000\nperiod = \"1us\"\n",
            "bad.toml:5:9: rule[0].limit[0].limit: 5000 per 1000 ns gives an emission interval below 1 ns",
        ),
        (
            "[[rule]]\nname = \"a\"\n[[rule.limit]]\nkey = \"user\"\nalgorithm = \"fixed_window\"\nlimit = 5\nperiod = \"1s\"\nburst = 3\n",
            "bad.toml:8:9: rule[0].limit[0].burst: burst only applies to algorithm = \"gcra\"",
        ),
        (
            "[[rule]]\nname = \"a\"\n",
            "bad.toml:2:8: rule[0].limit: a rule needs at least one [[rule.limit]], or unlimited = true",
        ),
        (
            "[response]\nheaders = \"github\"\n",
            "bad.toml:2:11: response.headers: unknown header style \"github\" (use evenergy, uphold, switch or ietf)",
        ),
        (
            "[response]\nstatus = 200\n",
            "bad.toml:2:10: response.status: status must be 400 to 599",
        ),
        (
            "[table]\nwhen_full = \"panic\"\n",
            "bad.toml:2:13: table.when_full: unknown policy \"panic\" (use evict, deny or allow)",
        ),
        (
            "[[rule]]\nname = \"a\"\n[[rule.limit]]\nkey = \"user\"\nlimit = -3\nperiod = \"1s\"\n",
            "bad.toml:5:9: rule[0].limit[0].limit: limit must be at least 1",
        ),
        (
            "[[rule]\nname = \"a\"\n",
            "bad.toml:1:8: unclosed array table, expected `]`",
        ),
        (
            "[[rule]]\nname = \"a\"\n[[rule.limit]]\nkey = \"user\"\nlimit = \"five\"\nperiod = \"1s\"\n",
            "bad.toml:5:9: invalid type: string \"five\", expected i64",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(&error(text).to_string(), expected, "input:\n{text}");
    }
}

#[test]
fn errors_carry_their_parts() {
    let e = error(&format!(
        "[[rule]]\nname = \"a\"\n[[rule.limit]]\n{GOOD_LIMIT}sub_windows = 4\n"
    ));
    assert_eq!(e.origin, "bad.toml");
    assert_eq!(e.line, 7);
    assert_eq!(e.field, "rule[0].limit[0].sub_windows");
    assert_eq!(
        e.message,
        "sub_windows only applies to algorithm = \"sliding_window_strict\""
    );
}

#[test]
fn unreadable_files_name_the_file() {
    let e = Policy::from_toml_file("examples/policies/does-not-exist.toml").unwrap_err();
    assert_eq!(e.origin, "examples/policies/does-not-exist.toml");
    assert!(e.message.starts_with("cannot read: "), "{}", e.message);
}
