//! `cobuy customers`' per-customer CSV: one writer for the CLI and the Python package.

use std::io::Write as _;

use crate::ids::IdTable;
use crate::output::fields::{put_fixed, write_csv_field};
use crate::time;

use super::{CustomerScore, CustomerSummary, Occasion};

/// The per-customer CSV: summaries and scores, one row per summary.
pub struct CustomerTable<'a> {
    /// The customers' ids ([`CustomerSummary::customer`] indexes them).
    pub ids: &'a IdTable,
    /// The summaries.
    pub summaries: &'a [CustomerSummary],
    /// One score per summary.
    pub scores: &'a [CustomerScore],
    /// Whether the log has amounts (the revenue, spend, value and `m` columns).
    pub amounts: bool,
}

impl CustomerTable<'_> {
    /// The header line, with the unit (`week`) and occasion in the column names.
    pub fn header(&self, occasion: Occasion, unit: &str) -> String {
        let mut h = format!(
            "customer,purchases,repeat_{},recency_{unit}s,age_{unit}s,since_last_{unit}s,first_purchase,last_purchase",
            occasion.plural()
        );
        if self.amounts {
            h.push_str(",revenue,mean_repeat_spend");
        }
        h.push_str(&format!(",p_alive,expected_purchases,p_no_purchase,churn_risk,next_purchase_{unit}s"));
        if self.amounts {
            h.push_str(",expected_spend,lifetime_value");
        }
        h.push_str(",tier,r,f");
        if self.amounts {
            h.push_str(",m");
        }
        h.push_str(",segment\n");
        h
    }

    /// One customer's line; values a model could not give are empty, never NaN.
    pub fn row(&self, i: usize, buf: &mut Vec<u8>) {
        let (s, c) = (&self.summaries[i], &self.scores[i]);
        let num = |buf: &mut Vec<u8>, v: Option<f64>, decimals: usize| {
            buf.push(b',');
            if let Some(v) = v.filter(|v| v.is_finite()) {
                put_fixed(buf, v, decimals);
            }
        };
        write_csv_field(buf, self.ids.id(s.customer.0));
        let _ = write!(buf, ",{},{}", s.x as u64 + 1, s.x as u64);
        num(buf, Some(s.t_x), 4);
        num(buf, Some(s.t), 4);
        num(buf, Some(s.t - s.t_x), 4);
        let _ = write!(buf, ",{},{}", time::date(s.first), time::date(s.last));
        if self.amounts {
            num(buf, Some(s.revenue), 2);
            num(buf, (s.spend_n > 0).then_some(s.spend_mean), 2);
        }
        num(buf, c.p_alive, 6);
        num(buf, c.expected, 6);
        num(buf, c.p_no_purchase, 6);
        num(buf, c.churn_risk, 6);
        num(buf, c.next_purchase, 4);
        if self.amounts {
            num(buf, c.expected_spend, 2);
            num(buf, c.clv, 2);
        }
        let _ = write!(buf, ",{},{},{}", c.tier.name(), c.rfm.0, c.rfm.1);
        if let Some(m) = c.rfm.2 {
            let _ = write!(buf, ",{m}");
        }
        buf.push(b',');
        write_csv_field(buf, c.segment);
        buf.push(b'\n');
    }
}
