//! Rendering a decision: header lines and the response body.

use std::ptr;

use ratecore::http::{
    render_body, render_headers, BodyStyle, HeaderInput, HeaderStyle, QuotaReport,
};
use ratecore::Decision;
use ratecore_ffi::{
    ratecore_quota_report, ratecore_render_headers, ratecore_render_problem_json,
    ratecore_render_text_body,
};

use super::args::CStrArg;
use super::call::Call;
use super::{c_decision, decision_ptr, slice_ptr, Faults, OutBuf, S};

/// Makes one render call and checks it against the Rust API.
#[allow(clippy::too_many_lines)]
pub(super) fn step(call: &Call) {
    match call {
        Call::RenderHeaders {
            style,
            decision,
            reports,
            reports_arg,
            unix_now,
            out,
        } => {
            let mut faults = Faults::default();
            let style = match style % 6 {
                1 => Some(HeaderStyle::EvEnergy),
                2 => Some(HeaderStyle::Uphold),
                3 => Some(HeaderStyle::Switch),
                4 => Some(HeaderStyle::Ietf),
                _ => None,
            };
            let code = style.map_or(u32::from(style_code_invalid()), style_code);
            if style.is_none() {
                faults.0.push(S::UnknownHeaderStyle);
            }
            let mut dbuf = [c_decision(Decision::EMPTY); 2];
            let dp = decision_ptr(&mut dbuf, decision.as_ref(), &mut faults);
            let names: Vec<CStrArg> = reports
                .iter()
                .take(20)
                .map(|r| CStrArg::new(&r.name.text, r.name.how))
                .collect();
            let mut creports: Vec<ratecore_quota_report> = reports
                .iter()
                .zip(&names)
                .map(|(r, n)| ratecore_quota_report {
                    name: n.ptr(),
                    name_len: n.len,
                    period_ns: r.period.get(),
                    decision: c_decision(r.decision.decision()),
                })
                .collect();
            creports.push(ratecore_quota_report {
                name: ptr::null(),
                name_len: 0,
                period_ns: 1,
                decision: c_decision(Decision::EMPTY),
            });
            let (rp, rlen) = slice_ptr(&mut creports, *reports_arg);
            faults.slice(*reports_arg, rlen, 8);
            if rlen > 16 {
                faults.0.push(S::InvalidArgument);
            }
            for name in names.iter().take(rlen.min(16)) {
                if let Some(fault) = name.fault {
                    faults.0.push(fault);
                }
            }
            let mut o = OutBuf::new(out, &mut faults);
            // SAFETY: every pointer is valid for its length, NULL, or misaligned.
            let status = unsafe {
                ratecore_render_headers(
                    code,
                    dp,
                    rp,
                    rlen,
                    unix_now.get(),
                    o.bytes.ptr,
                    o.bytes.len,
                    o.written_ptr(),
                )
            };
            if !o.judge(&faults, status, "render_headers") {
                return;
            }
            let quotas: Vec<QuotaReport<'_>> = reports
                .iter()
                .zip(&names)
                .take(rlen)
                .map(|(r, n)| QuotaReport {
                    name: &n.text,
                    period: r.period.get(),
                    decision: r.decision.decision(),
                })
                .collect();
            let input = HeaderInput {
                decision: decision.expect("no faults").decision(),
                quotas: &quotas,
                unix_now_nanos: unix_now.get(),
            };
            o.compare(status, |buf| {
                render_headers(style.expect("no faults"), &input, buf)
            });
        }
        Call::RenderBody {
            decision,
            type_uri,
            title,
            period,
            out,
        } => {
            let mut faults = Faults::default();
            let mut dbuf = [c_decision(Decision::EMPTY); 2];
            let dp = decision_ptr(&mut dbuf, decision.as_ref(), &mut faults);
            let title = CStrArg::new(&title.text, title.how);
            let type_uri = type_uri.as_ref().map(|t| CStrArg::new(&t.text, t.how));
            faults.0.extend(title.fault);
            if let Some(t) = &type_uri {
                faults.0.extend(t.fault);
            }
            let mut o = OutBuf::new(out, &mut faults);
            let period = period.get();
            // SAFETY: every pointer is valid for its length, NULL, or misaligned.
            let status = unsafe {
                match &type_uri {
                    Some(t) => ratecore_render_problem_json(
                        dp,
                        t.ptr(),
                        t.len,
                        title.ptr(),
                        title.len,
                        o.bytes.ptr,
                        o.bytes.len,
                        o.written_ptr(),
                    ),
                    None => ratecore_render_text_body(
                        dp,
                        title.ptr(),
                        title.len,
                        period,
                        o.bytes.ptr,
                        o.bytes.len,
                        o.written_ptr(),
                    ),
                }
            };
            if !o.judge(&faults, status, "render_body") {
                return;
            }
            let decision = decision.expect("no faults").decision();
            let (style, period) = match &type_uri {
                Some(t) => (
                    BodyStyle::ProblemJson {
                        type_uri: &t.text,
                        title: &title.text,
                        status: 429,
                    },
                    0,
                ),
                None => (
                    BodyStyle::PlainText {
                        subject: &title.text,
                    },
                    period,
                ),
            };
            o.compare(status, |buf| render_body(&style, &decision, period, buf));
        }
        _ => unreachable!("not a render call: {call:?}"),
    }
}

fn style_code(style: HeaderStyle) -> u32 {
    match style {
        HeaderStyle::EvEnergy => 1,
        HeaderStyle::Uphold => 2,
        HeaderStyle::Switch => 3,
        HeaderStyle::Ietf => 4,
    }
}

const fn style_code_invalid() -> u8 {
    5
}
