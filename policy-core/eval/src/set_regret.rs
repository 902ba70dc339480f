//! A stop rule against every static limit over a set of programs, as
//! regret to the exact oracle (simulation only, where the oracle is the
//! best stop in hindsight on the same guest), and the goals it is held to.
//!
//! Summed cost hides what a stop rule controls, because most of it is the
//! bulk copy no rule can avoid; its regret (cost minus the oracle's) does
//! not. Only programs some static limit finishes within the maximum are
//! counted; the others are reported apart. A counted run of the rule that
//! does not finish is charged the time cap.

/// The rule's summed regret is at most this share of the best single
/// static limit's.
pub const REGRET_SHARE_GOAL: f64 = 0.5;
/// A program is easy for the best single static limit when that limit's
/// regret is under this share of its cost …
pub const EASY_REGRET_SHARE: f64 = 0.01;
/// … and on easy programs the rule adds at most this share of cost on
/// average.
pub const EASY_ADDED_SHARE_GOAL: f64 = 0.01;
/// The rule's cost is at most this multiple of each program's own best
/// static limit.
pub const OWN_BEST_RATIO_GOAL: f64 = 2.0;

/// One program's costs, ms (`None`: did not finish within the maximum).
#[derive(Debug, Clone, PartialEq)]
pub struct ProgramCosts {
    /// The rule's.
    pub rule_ms: Option<f64>,
    /// Each static limit's, in the set's order of limits.
    pub statics_ms: Vec<Option<f64>>,
    /// The exact oracle's (`None`: the program has no allowed stop).
    pub oracle_ms: Option<f64>,
}

/// What a set (or several) shows; sums are over counted programs.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SetRegret {
    /// Programs some static limit finishes (with an oracle).
    pub counted: usize,
    /// Programs no static limit finishes, reported apart.
    pub none_finish: usize,
    /// Programs some static limit finishes that have no oracle (no allowed
    /// stop on their never-stop run), reported apart.
    pub no_oracle: usize,
    /// Counted programs the rule does not finish (charged the cap).
    pub rule_failures: usize,
    /// Summed regret of the rule, ms.
    pub rule_regret_ms: f64,
    /// Summed regret of the best single static limit, ms.
    pub best_single_regret_ms: f64,
    /// Summed cost of the rule, ms.
    pub rule_cost_ms: f64,
    /// Summed cost of the best single static limit, ms.
    pub best_single_cost_ms: f64,
    /// Programs easy for the best single static limit.
    pub easy: usize,
    /// Sum over easy programs of (rule − best single) / best single.
    pub easy_added_share_sum: f64,
    /// The largest cost of the rule over a program's own best static limit.
    pub worst_own_ratio: f64,
}

impl SetRegret {
    /// The rule's summed regret over the best single limit's (+∞ when that
    /// one has none and the rule some).
    pub fn regret_share(&self) -> f64 {
        if self.best_single_regret_ms > 0.0 {
            self.rule_regret_ms / self.best_single_regret_ms
        } else if self.rule_regret_ms > 0.0 {
            f64::INFINITY
        } else {
            0.0
        }
    }

    /// The mean share of cost the rule adds on easy programs.
    pub fn easy_added_share(&self) -> f64 {
        if self.easy == 0 {
            0.0
        } else {
            self.easy_added_share_sum / self.easy as f64
        }
    }

    /// Each goal, in the order [`Goal::ALL`] lists them, met or not.
    pub fn goals(&self) -> [(Goal, bool); 4] {
        Goal::ALL.map(|g| (g, g.met(self)))
    }

    /// Several sets as one (sums added, worst of the worsts).
    pub fn merged(sets: &[SetRegret]) -> SetRegret {
        sets.iter().fold(SetRegret::default(), |a, s| SetRegret {
            counted: a.counted + s.counted,
            none_finish: a.none_finish + s.none_finish,
            no_oracle: a.no_oracle + s.no_oracle,
            rule_failures: a.rule_failures + s.rule_failures,
            rule_regret_ms: a.rule_regret_ms + s.rule_regret_ms,
            best_single_regret_ms: a.best_single_regret_ms + s.best_single_regret_ms,
            rule_cost_ms: a.rule_cost_ms + s.rule_cost_ms,
            best_single_cost_ms: a.best_single_cost_ms + s.best_single_cost_ms,
            easy: a.easy + s.easy,
            easy_added_share_sum: a.easy_added_share_sum + s.easy_added_share_sum,
            worst_own_ratio: a.worst_own_ratio.max(s.worst_own_ratio),
        })
    }
}

/// The goals a stop rule is held to over held-out sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// Summed regret ≤ [`REGRET_SHARE_GOAL`] × the best single limit's.
    RegretShare,
    /// Summed cost ≤ the best single limit's.
    CostNotAbove,
    /// ≤ [`EASY_ADDED_SHARE_GOAL`] added on average on easy programs.
    EasyAdded,
    /// ≤ [`OWN_BEST_RATIO_GOAL`] × each program's own best limit.
    OwnBestRatio,
}

impl Goal {
    /// Every goal, in the order pages list them.
    pub const ALL: [Goal; 4] = [
        Goal::RegretShare,
        Goal::CostNotAbove,
        Goal::EasyAdded,
        Goal::OwnBestRatio,
    ];

    /// True when `set` meets this goal.
    pub fn met(self, set: &SetRegret) -> bool {
        match self {
            Goal::RegretShare => set.regret_share() <= REGRET_SHARE_GOAL,
            Goal::CostNotAbove => set.rule_cost_ms <= set.best_single_cost_ms,
            Goal::EasyAdded => set.easy_added_share() <= EASY_ADDED_SHARE_GOAL,
            Goal::OwnBestRatio => set.worst_own_ratio <= OWN_BEST_RATIO_GOAL,
        }
    }
}

/// The set's figures, with the best single static limit (index into
/// `statics_ms`) chosen in hindsight over the counted programs, a run that
/// does not finish charged `cap_ms`. `None` when no program is counted.
pub fn set_regret(programs: &[ProgramCosts], cap_ms: f64) -> Option<(SetRegret, usize)> {
    let charged = |c: Option<f64>| c.map_or(cap_ms, |c| c.min(cap_ms));
    // Capped like every cost here, so a ratio compares like with like.
    let own_best = |p: &ProgramCosts| {
        p.statics_ms
            .iter()
            .flatten()
            .map(|&c| c.min(cap_ms))
            .fold(None, |m: Option<f64>, c| Some(m.map_or(c, |m| m.min(c))))
    };
    let some_finish: Vec<(&ProgramCosts, f64)> = programs
        .iter()
        .filter_map(|p| Some((p, own_best(p)?)))
        .collect();
    let counted: Vec<(&ProgramCosts, f64, f64)> = some_finish
        .iter()
        .filter_map(|&(p, own)| Some((p, own, p.oracle_ms?)))
        .collect();
    let limits = counted.first()?.0.statics_ms.len();
    let total = |i: usize| -> f64 {
        counted
            .iter()
            .map(|(p, _, _)| charged(p.statics_ms.get(i).copied().flatten()))
            .sum()
    };
    let best = (0..limits).min_by(|&a, &b| total(a).total_cmp(&total(b)))?;
    let mut out = SetRegret {
        counted: counted.len(),
        none_finish: programs.len() - some_finish.len(),
        no_oracle: some_finish.len() - counted.len(),
        ..SetRegret::default()
    };
    for (p, own_best_ms, oracle_ms) in counted {
        let rule = charged(p.rule_ms);
        let single = charged(p.statics_ms.get(best).copied().flatten());
        out.rule_failures += usize::from(p.rule_ms.is_none());
        out.rule_regret_ms += rule - oracle_ms;
        out.best_single_regret_ms += single - oracle_ms;
        out.rule_cost_ms += rule;
        out.best_single_cost_ms += single;
        if single - oracle_ms < EASY_REGRET_SHARE * single {
            out.easy += 1;
            out.easy_added_share_sum += (rule - single) / single;
        }
        out.worst_own_ratio = out.worst_own_ratio.max(rule / own_best_ms);
    }
    Some((out, best))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program(rule: Option<f64>, statics: &[Option<f64>], oracle: f64) -> ProgramCosts {
        ProgramCosts {
            rule_ms: rule,
            statics_ms: statics.to_vec(),
            oracle_ms: Some(oracle),
        }
    }

    #[test]
    fn regret_is_counted_over_programs_some_limit_finishes() {
        let programs = [
            // The second limit is the best single one (10 + 20 = 30 vs 31).
            program(Some(10.0), &[Some(11.0), Some(10.0)], 10.0),
            program(Some(25.0), &[Some(20.0), Some(20.0)], 18.0),
            // No limit finishes: apart.
            program(Some(5.0), &[None, None], 4.0),
        ];
        let (s, best) = set_regret(&programs, 600.0).unwrap();
        assert_eq!(best, 1);
        assert_eq!((s.counted, s.none_finish, s.rule_failures), (2, 1, 0));
        assert_eq!(s.no_oracle, 0);
        assert_eq!(s.rule_regret_ms, 7.0);
        assert_eq!(s.best_single_regret_ms, 2.0);
        assert_eq!(s.regret_share(), 3.5);
        assert_eq!((s.rule_cost_ms, s.best_single_cost_ms), (35.0, 30.0));
        // Easy: the first (regret 0); the second's 2 of 20 is not.
        assert_eq!(s.easy, 1);
        assert_eq!(s.easy_added_share(), 0.0);
        assert_eq!(s.worst_own_ratio, 1.25);
        let goals = s.goals();
        assert!(!goals[0].1 && !goals[1].1 && goals[2].1 && goals[3].1);
    }

    #[test]
    fn a_rule_that_does_not_finish_is_charged_the_cap() {
        let programs = [program(None, &[Some(10.0)], 10.0)];
        let (s, _) = set_regret(&programs, 600.0).unwrap();
        assert_eq!(s.rule_failures, 1);
        assert_eq!(s.rule_regret_ms, 590.0);
        assert_eq!(s.worst_own_ratio, 60.0);
        assert!(!Goal::OwnBestRatio.met(&s));
    }

    #[test]
    fn sets_merge_by_sums_and_the_worst_ratio() {
        let a = set_regret(&[program(Some(10.05), &[Some(10.0)], 10.0)], 600.0)
            .unwrap()
            .0;
        let b = set_regret(&[program(Some(20.0), &[Some(30.0)], 20.0)], 600.0)
            .unwrap()
            .0;
        let m = SetRegret::merged(&[a, b]);
        assert_eq!(m.counted, 2);
        assert!((m.rule_regret_ms - 0.05).abs() < 1e-9);
        assert_eq!(m.best_single_regret_ms, 10.0);
        assert!((m.regret_share() - 0.005).abs() < 1e-9);
        assert!((m.worst_own_ratio - 1.005).abs() < 1e-9);
        // The easy program (a) had 0.5 % added.
        assert_eq!(m.easy, 1);
        assert!((m.easy_added_share() - 0.005).abs() < 1e-9);
        assert!(m.goals().iter().all(|(_, met)| *met));
    }

    #[test]
    fn a_program_without_an_oracle_is_apart_from_one_no_limit_finishes() {
        let programs = [
            program(Some(10.0), &[Some(10.0)], 10.0),
            ProgramCosts {
                rule_ms: Some(5.0),
                statics_ms: vec![Some(5.0)],
                oracle_ms: None,
            },
            program(None, &[None], 1.0),
        ];
        let (s, _) = set_regret(&programs, 600.0).unwrap();
        assert_eq!((s.counted, s.no_oracle, s.none_finish), (1, 1, 1));
    }

    #[test]
    fn nothing_counted_is_none() {
        assert!(set_regret(&[program(Some(1.0), &[None], 1.0)], 600.0).is_none());
        assert!(set_regret(&[], 600.0).is_none());
    }
}
