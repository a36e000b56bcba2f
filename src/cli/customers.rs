//! `cobuy customers`: per-customer value from a purchase log. Summaries (repeat purchases,
//! recency, age, spend), the repeat-purchase models fitted by maximum likelihood (the best
//! by likelihood unless one is named) and Gamma-Gamma for spend, then per customer:
//! P(alive), expected purchases, churn risk, expected spend, lifetime value, tier and RFM
//! segment, as CSV. The fitted parameters, log-likelihoods and standard errors go to the log.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;

use std::io::Write as _;

use cobuy::batch::{write_blocks, write_csv_field};
use cobuy::ids::IdTable;
use cobuy::ingest;
use cobuy::output::TableFile;
use cobuy::time::{self, DAY};
use cobuy::value::{
    self, CustomerScore, CustomerSummary, Distinct, Model, Occasion, Purchases, ScoreOptions, SpendFit, SummaryOptions,
    TierBasis, TierBy, ValueError, fit::Fitted,
};

use super::args::{InputArgs, ingest_options, set_threads};
use super::paths::Files;
use super::{Log, bad, create_parent, plural, summary_lines};

/// `cobuy customers` flags.
#[derive(Args, Debug)]
pub struct CustomersCmd {
    #[command(flatten)]
    input: InputArgs,
    /// Repeat-purchase model: auto (bg-nbd and mbg-nbd fitted, the best log-likelihood
    /// kept), bg-nbd, mbg-nbd or pareto-nbd (by name only: slow on some large logs).
    #[arg(long, default_value = "auto")]
    model: String,
    /// Time unit of recency, age and the horizon: day, week or month (30.4375 days).
    #[arg(long, default_value = "week")]
    unit: String,
    /// Horizon of expected purchases, churn risk and lifetime value, in time units
    /// (default: a year, 365 days, 52 weeks or 12 months).
    #[arg(long, allow_negative_numbers = true)]
    horizon: Option<f64>,
    /// Yearly discount rate of lifetime value, 0 to 1 (0.1 is 10% a year).
    #[arg(long, default_value_t = 0.1, allow_negative_numbers = true)]
    discount: f64,
    /// Only purchases up to this date (YYYY-MM-DD, or a time): the observation ends there,
    /// for checks against what came after.
    #[arg(long)]
    until: Option<String>,
    /// What ranks the tiers (top 20%, middle, bottom 20%): value (lifetime value) or
    /// revenue (past).
    #[arg(long, default_value = "value")]
    tier_by: String,
    /// Output CSV, one line per customer (`-`: standard output).
    #[arg(long)]
    out: PathBuf,
}

/// Seconds per unit, and the default horizon (a year) in it.
fn unit(name: &str) -> Result<(f64, f64)> {
    let day = DAY as f64;
    match name {
        "day" | "days" => Ok((day, 365.0)),
        "week" | "weeks" => Ok((7.0 * day, 52.0)),
        "month" | "months" => Ok((30.4375 * day, 12.0)),
        _ => Err(bad(format!("--unit takes day, week or month, got {name:?}"))),
    }
}

/// Runs `cobuy customers`.
pub fn run(cmd: &CustomersCmd, threads: usize, log: Log) -> Result<()> {
    let (unit_seconds, year) = unit(&cmd.unit)?;
    let unit_name = cmd.unit.trim_end_matches('s');
    let score_opts = ScoreOptions {
        horizon: cmd.horizon.unwrap_or(year),
        unit_seconds,
        discount: cmd.discount,
        tier_by: match cmd.tier_by.as_str() {
            "value" => TierBy::Value,
            "revenue" => TierBy::Revenue,
            other => return Err(bad(format!("--tier-by takes value or revenue, got {other:?}"))),
        },
    };
    score_opts.check().map_err(|e| bad(e.to_string()))?;
    let model: Option<Model> = match cmd.model.as_str() {
        "auto" => None,
        m => Some(m.parse().map_err(|e: String| bad(format!("--model: {e}, or auto")))?),
    };
    let until = match &cmd.until {
        None => None,
        Some(s) => Some(time::parse(s).ok_or_else(|| bad(format!("--until: not a date or time: {s:?}")))?),
    };
    let mut opts = ingest_options(&cmd.input, &cmd.out)?;
    let Some(time_col) = opts.columns.time.clone() else {
        return Err(bad("customer value needs purchase times: give the time column (--time-col)"));
    };
    // No item column: customer value does not need one, so the time column stands in.
    let own_items = cmd.input.item_col.is_some();
    if !own_items {
        opts.columns.item = time_col;
    }
    Files::new()
        .input("purchases", Some(&cmd.input.purchases))
        .output("customers file", Some(&cmd.out))
        .output("rejects file", opts.rejects.as_deref())
        .check()?;
    set_threads(threads)?;
    if let Some(r) = &opts.rejects {
        create_parent(r)?;
    }
    let start = Instant::now();
    log.info(format!("reading {}", cmd.input.purchases.display()));
    let (plog, summary) = ingest::read_log(&cmd.input.purchases, &opts)?;
    log.info(format!("read {} rows in {:.1}s", summary.rows_read, start.elapsed().as_secs_f64()));
    for line in summary_lines(&summary, opts.rejects.as_deref()) {
        if line.contains("customer-item pairs") || (!own_items && line.contains(" customers (")) {
            continue;
        }
        log.info(line);
    }
    let occasion = if opts.columns.basket.is_some() { Occasion::Basket } else { Occasion::Day };
    let start = Instant::now();
    let (summaries, st) =
        value::summarize(&plog, &SummaryOptions { occasion, unit_seconds, until }).map_err(|e| match e {
            ValueError::NoPurchases if until.is_some() => {
                bad(format!("no purchases up to {}", cmd.until.as_deref().unwrap_or("")))
            }
            e => bad(e.to_string()),
        })?;
    // Only the ids are needed from here on: the rows go.
    let ingest::PurchaseLog { customers, rows, .. } = plog;
    drop(rows);
    log.info(format!(
        "{} summarised in {:.1}s: a purchase is a distinct {} ({} {}), times in {unit_name}s{}",
        plural(st.customers, "customer"),
        start.elapsed().as_secs_f64(),
        if occasion == Occasion::Day { "day" } else { "basket" },
        plural(st.repeat_customers, "customer"),
        if st.repeat_customers == 1 { "buys again" } else { "buy again" },
        until.map_or(String::new(), |u| format!(", observed to {}", time::date(u))),
    ));
    let mut left_out = Vec::new();
    for (n, what) in [
        (st.after_until_rows, "after --until"),
        (st.return_rows, "returns (negative quantity)"),
        (st.customers_without_purchases, "customers with no purchase kept"),
    ] {
        if n > 0 {
            left_out.push(format!("{n} {what}"));
        }
    }
    if !left_out.is_empty() {
        log.info(format!("left out: {}", left_out.join(", ")));
    }
    if !st.has_amounts {
        log.info("no amount or price column (--amount-col, --price-col): spend, revenue, lifetime value and RFM's M are left out");
    } else if st.nonpositive_amount_rows > 0 {
        log.info(format!(
            "{} purchase rows with an amount of 0 or less: counted as purchases, left out of spend",
            st.nonpositive_amount_rows
        ));
    }
    let purchases = fit_purchases(&summaries, model, log)?;
    let spend = if st.has_amounts { fit_spend(&summaries, log) } else { None };
    let start = Instant::now();
    let (scores, basis) = value::score(&summaries, purchases.as_ref(), spend.as_ref(), st.has_amounts, &score_opts)
        .map_err(|e| bad(e.to_string()))?;
    let no_spend = scores.iter().filter(|s| s.expected.is_some() && s.expected_spend.is_none()).count();
    if spend.is_some() && no_spend > 0 {
        log.info(format!(
            "{} without an expected spend: the spend model's population mean is infinite (q <= 1) and they have no repeat spend of their own",
            plural(no_spend as u64, "customer")
        ));
    }
    log.info(format!(
        "scored in {:.1}s: horizon {} {unit_name}s, discount {}/year; tiers by {}",
        start.elapsed().as_secs_f64(),
        score_opts.horizon,
        score_opts.discount,
        match basis {
            TierBasis::LifetimeValue => "lifetime value",
            TierBasis::ExpectedPurchases => "expected purchases (no spend)",
            TierBasis::Revenue => "past revenue",
            TierBasis::Purchases => "purchases (no model, no amounts)",
        }
    ));
    create_parent(&cmd.out)?;
    let mut f = TableFile::create(&cmd.out).with_context(|| format!("cannot create {}", cmd.out.display()))?;
    let table = Table { ids: &customers, summaries: &summaries, scores: &scores, amounts: st.has_amounts };
    let header = table.header(occasion, unit_name);
    let order: Vec<usize> = (0..summaries.len()).collect();
    let stats = write_blocks(
        &order,
        &header,
        &mut f,
        &|_| {},
        || (),
        |_, &i, buf, st| {
            table.row(i, buf);
            st.customers += 1;
            st.rows += 1;
        },
    )
    .with_context(|| format!("cannot write {}", cmd.out.display()))?;
    f.commit().with_context(|| format!("cannot write {}", cmd.out.display()))?;
    log.info(format!("wrote {} to {}", plural(stats.rows, "customer"), cmd.out.display()));
    Ok(())
}

/// The per-customer CSV.
struct Table<'a> {
    ids: &'a IdTable,
    summaries: &'a [CustomerSummary],
    scores: &'a [CustomerScore],
    amounts: bool,
}

impl Table<'_> {
    fn header(&self, occasion: Occasion, unit: &str) -> String {
        let mut h = format!(
            "customer,purchases,repeat_{},recency_{unit}s,age_{unit}s,since_last_{unit}s,first_purchase,last_purchase",
            occasion.plural()
        );
        if self.amounts {
            h.push_str(",revenue,mean_repeat_spend");
        }
        h.push_str(",p_alive,expected_purchases,p_no_purchase");
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
    fn row(&self, i: usize, buf: &mut Vec<u8>) {
        let (s, c) = (&self.summaries[i], &self.scores[i]);
        let num = |buf: &mut Vec<u8>, v: Option<f64>, decimals: usize| {
            buf.push(b',');
            if let Some(v) = v.filter(|v| v.is_finite()) {
                let _ = write!(buf, "{v:.decimals$}");
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

/// A model's parameters in one line: `r = 0.2426 (se 0.0126), ...; log-likelihood -9582.43`.
fn describe<const N: usize, M: std::fmt::Display>(f: &Fitted<N, M>, names: [&str; N]) -> String {
    let params: Vec<String> = (0..N)
        .map(|k| match (f.boundary[k], f.std_errors[k]) {
            (Some(-1), _) => format!("{} = 0 (at the boundary)", names[k]),
            (Some(_), _) => format!("{} = infinity (at the boundary)", names[k]),
            (None, Some(se)) => format!("{} = {:.6} (se {:.6})", names[k], f.params[k], se),
            (None, None) => format!("{} = {:.6} (no se: the Hessian is not positive definite)", names[k], f.params[k]),
        })
        .collect();
    format!(
        "{}: {}; log-likelihood {:.4} over {} customers, {} iterations",
        f.model,
        params.join(", "),
        f.log_likelihood,
        f.customers,
        f.iterations
    )
}

/// The repeat-purchase model: the one named, or every one and the best by likelihood.
/// Nobody buying twice, or (auto) no model converging: none, a stated fallback; a named
/// model that fails: an error.
fn fit_purchases(summaries: &[CustomerSummary], model: Option<Model>, log: Log) -> Result<Option<Purchases>> {
    let d = Distinct::new(summaries.iter().map(|s| [s.x, s.t_x, s.t]).collect());
    let start = Instant::now();
    let result = match model {
        Some(m) => value::fit_model(m, &d).inspect(|f| log.info(describe(f, m.param_names()))),
        None => value::fit_best(&d).map(|(best, all)| {
            for (m, r) in &all {
                match r {
                    Ok(f) => log.info(describe(f, m.param_names())),
                    Err(e) => log.info(format!("{m}: not fitted: {e}")),
                }
            }
            log.info(format!("model: {} (the best log-likelihood)", best.model));
            best
        }),
    };
    match result {
        Ok(f) => {
            log.info(format!(
                "fitted on {} distinct (frequency, recency, age) rows in {:.1}s",
                d.rows.len(),
                start.elapsed().as_secs_f64()
            ));
            Ok(Some(f))
        }
        Err(e) if model.is_none() && e != ValueError::NoRepeatPurchases => {
            log.info(format!("no repeat-purchase model could be fitted ({e}): P(alive), expected purchases, churn risk and lifetime value are left empty"));
            Ok(None)
        }
        Err(ValueError::NoRepeatPurchases) => {
            log.info("no customer bought twice: no repeat-purchase model can be fitted; P(alive), expected purchases, churn risk and lifetime value are left empty");
            Ok(None)
        }
        Err(e) => Err(anyhow::anyhow!(e)),
    }
}

/// Gamma-Gamma on the customers with repeat spend; none (stated) when it cannot be fitted.
fn fit_spend(summaries: &[CustomerSummary], log: Log) -> Option<SpendFit> {
    let pairs: Vec<(f64, f64)> =
        summaries.iter().filter(|s| s.spend_n > 0).map(|s| (f64::from(s.spend_n), s.spend_mean)).collect();
    match value::fit_spend(&pairs) {
        Ok(f) => {
            log.info(describe(&f, ["p", "q", "gamma"]));
            Some(f)
        }
        Err(e) => {
            log.info(format!("gamma-gamma: not fitted: {e}; expected spend and lifetime value are left empty"));
            None
        }
    }
}
