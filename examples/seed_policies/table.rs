//! Printing: decision tables, times of the simulated day, durations in human units.

use ratecore::{Decision, NEVER};

use crate::scenarios::{HOUR, MINUTE, MS, SECOND};

/// A placeholder for [`Composite::check_each`]'s output slots.
pub const EMPTY: Decision = Decision {
    allowed: false,
    limit: 0,
    remaining: 0,
    reset_after: 0,
    retry_after: 0,
};

pub fn section(title: &str, promise: &str) {
    println!();
    println!("=== {title}: {promise} ===");
}

/// `HH:MM:SS.mmm` of the simulated day (more digits when `t` is not whole milliseconds).
pub fn clock(t: u64) -> String {
    let (h, m, s) = (t / HOUR, t % HOUR / MINUTE, t % MINUTE / SECOND);
    let sub = t % SECOND;
    if sub % MS == 0 {
        format!("{h:02}:{m:02}:{s:02}.{:03}", sub / MS)
    } else {
        format!("{h:02}:{m:02}:{s:02}.{sub:09}")
    }
}

/// A duration in human units: `500 ms`, `41 s`, `1.5 s`, `29m 00s`, `1h 00m 00s`.
pub fn human(d: u64) -> String {
    if d == NEVER {
        return String::from("never");
    }
    if d < SECOND {
        return if d % MS == 0 {
            format!("{} ms", d / MS)
        } else if d % 1_000 == 0 {
            format!("{} us", d / 1_000)
        } else {
            format!("{d} ns")
        };
    }
    let (h, m, s) = (d / HOUR, d % HOUR / MINUTE, d % MINUTE / SECOND);
    let sub = d % SECOND;
    let fraction = if sub == 0 {
        String::new()
    } else {
        let digits = format!("{sub:09}");
        format!(".{}", digits.trim_end_matches('0'))
    };
    if h > 0 {
        format!("{h}h {m:02}m {s:02}{fraction}s")
    } else if m > 0 {
        format!("{m}m {s:02}{fraction}s")
    } else {
        format!("{s}{fraction} s")
    }
}

/// The standard row of a decision table.
pub fn decision_cells(now: u64, n: u64, d: &Decision) -> Vec<String> {
    let [verdict, remaining, reset_after, retry_after] = outcome_cells(d);
    vec![
        clock(now),
        n.to_string(),
        verdict,
        d.limit.to_string(),
        remaining,
        reset_after,
        retry_after,
    ]
}

/// The columns after the verdict that [`outcome_cells`] fills.
pub const OUTCOME_COLUMNS: [(&str, Align); 3] = [
    ("remaining", Align::Right),
    ("reset_after", Align::Right),
    ("retry_after", Align::Right),
];

/// Verdict, remaining, reset_after and retry_after of a decision.
pub fn outcome_cells(d: &Decision) -> [String; 4] {
    [
        String::from(if d.allowed { "allowed" } else { "DENIED" }),
        d.remaining.to_string(),
        human(d.reset_after),
        if d.allowed {
            String::from("-")
        } else {
            human(d.retry_after)
        },
    ]
}

/// The standard columns of a decision, as [`decision_cells`] fills them.
pub const DECISION_COLUMNS: [(&str, Align); 7] = [
    ("time", Align::Left),
    ("#", Align::Right),
    ("verdict", Align::Left),
    ("limit", Align::Right),
    ("remaining", Align::Right),
    ("reset_after", Align::Right),
    ("retry_after", Align::Right),
];

/// A table of single decisions with the standard columns.
pub struct DecisionTable(Table);

impl DecisionTable {
    pub fn new() -> Self {
        Self(Table::new(&DECISION_COLUMNS))
    }

    pub fn row(&mut self, now: u64, n: u64, d: &Decision) {
        self.0.cells(decision_cells(now, n, d));
    }

    pub fn note(&mut self, text: &str) {
        self.0.note(text);
    }

    pub fn print(&self) {
        self.0.print();
    }
}

#[derive(Clone, Copy)]
pub enum Align {
    Left,
    Right,
}

enum Row {
    Cells(Vec<String>),
    Note(String),
}

/// A plain-text table whose columns are as wide as their widest cell.
pub struct Table {
    headers: Vec<(String, Align)>,
    rows: Vec<Row>,
}

impl Table {
    pub fn new(headers: &[(&str, Align)]) -> Self {
        Self {
            headers: headers
                .iter()
                .map(|&(name, align)| (name.to_string(), align))
                .collect(),
            rows: Vec::new(),
        }
    }

    pub fn cells(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.headers.len());
        self.rows.push(Row::Cells(cells));
    }

    pub fn note(&mut self, text: &str) {
        self.rows.push(Row::Note(text.to_string()));
    }

    pub fn print(&self) {
        let mut widths: Vec<usize> = self.headers.iter().map(|(h, _)| h.len()).collect();
        for row in &self.rows {
            if let Row::Cells(cells) = row {
                for (width, cell) in widths.iter_mut().zip(cells) {
                    *width = (*width).max(cell.chars().count());
                }
            }
        }
        let line = |cells: &[String]| {
            let mut out = String::from(" ");
            for ((cell, (_, align)), &width) in cells.iter().zip(&self.headers).zip(&widths) {
                let padded = match align {
                    Align::Left => format!(" {cell:<width$}"),
                    Align::Right => format!(" {cell:>width$}"),
                };
                out.push_str(&padded);
                out.push_str(" |");
            }
            out.pop();
            println!("{}", out.trim_end());
        };
        let headers: Vec<String> = self.headers.iter().map(|(h, _)| h.clone()).collect();
        line(&headers);
        let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
        line(&rule);
        for row in &self.rows {
            match row {
                Row::Cells(cells) => line(cells),
                Row::Note(text) if text.is_empty() => line(&rule),
                Row::Note(text) => println!("   ... {text}"),
            }
        }
    }
}
