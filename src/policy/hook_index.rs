//! The per-hook index of Rego policies: which hooks a parsed module's `deny` and `warn` rules can
//! speak at, worked out once at load from the module's syntax tree, so the engine evaluates a
//! policy only at the hooks it has rules for. It owns that static analysis and nothing else.
//!
//! The analysis is conservative: it may only ever say "every hook". A rule body is restricted to
//! hook H only when one of its top-level statements, without `with` modifiers, is
//! `input.hook == "H"` (either side order) or `input.hook in {"H", …}` (a set or array of string
//! literals), and nothing in the body rebinds `input`. A `deny`/`warn` rule with a body that has
//! no such guard, an `else`, a `default`, a function head, or anything the analysis does not
//! recognise, makes its module apply at every hook. A guarded body says where it applies: at any
//! other hook it contributes nothing, including any error its other statements would raise there.

use crate::policy::hook::HookPoint;
use regorus::unstable::{
    AssignOp, BoolOp, Expr, Literal, LiteralStmt, Module, Rule, RuleBody, RuleHead,
};

/// A set of hook points (a bit per [`HookPoint`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HookSet(u8);

impl HookSet {
    /// No hook.
    pub const NONE: HookSet = HookSet(0);
    /// Every hook.
    pub const ALL: HookSet = HookSet((1 << HookPoint::ALL.len()) - 1);

    /// The set holding only `hook`.
    pub fn of(hook: HookPoint) -> HookSet {
        HookSet(1 << hook as u8)
    }

    /// Whether `hook` is in the set.
    pub fn contains(self, hook: HookPoint) -> bool {
        self.0 & HookSet::of(hook).0 != 0
    }

    /// The union of two sets.
    pub fn union(self, other: HookSet) -> HookSet {
        HookSet(self.0 | other.0)
    }

    /// The hooks of the set, in pipeline order.
    pub fn hooks(self) -> Vec<HookPoint> {
        HookPoint::ALL
            .into_iter()
            .filter(|h| self.contains(*h))
            .collect()
    }
}

/// The rules whose values the engine reads (see `rego::RegoSet::evaluate`).
const VERDICT_RULES: [&str; 2] = ["deny", "warn"];

/// The hooks at which the `deny` and `warn` rules of `modules` can produce anything. Only a
/// single module is analysed: with several, packages may nest into one another's rule paths, and
/// the answer is every hook.
pub fn hooks_of(modules: &[impl std::ops::Deref<Target = Module>]) -> HookSet {
    match modules {
        [module] => module_hooks(module),
        [] => HookSet::NONE,
        _ => HookSet::ALL,
    }
}

fn module_hooks(module: &Module) -> HookSet {
    let mut hooks = HookSet::NONE;
    for rule in &module.policy {
        hooks = hooks.union(rule_hooks(rule));
        if hooks == HookSet::ALL {
            break;
        }
    }
    hooks
}

/// The hooks one rule can speak at; [`HookSet::NONE`] for a rule that is not `deny`/`warn`.
fn rule_hooks(rule: &Rule) -> HookSet {
    let (head, bodies) = match rule {
        // `default deny := …` has a value at every hook.
        Rule::Default { refr, .. } => {
            return match verdict_root(refr) {
                Some(false) => HookSet::NONE,
                _ => HookSet::ALL,
            };
        }
        Rule::Spec { head, bodies, .. } => (head, bodies),
    };
    let (refr, is_function) = match head {
        RuleHead::Compr { refr, .. } | RuleHead::Set { refr, .. } => (refr, false),
        RuleHead::Func { refr, .. } => (refr, true),
    };
    match verdict_root(refr) {
        Some(false) => return HookSet::NONE,
        // A head the analysis cannot read might be a verdict rule.
        None => return HookSet::ALL,
        Some(true) => {}
    }
    // A function's arguments may rebind `input`; and a rule without a body always holds.
    if is_function || bodies.is_empty() {
        return HookSet::ALL;
    }
    let mut hooks = HookSet::NONE;
    for body in bodies {
        match body_guard(body) {
            Some(guard) => hooks = hooks.union(guard),
            None => return HookSet::ALL,
        }
    }
    hooks
}

/// Whether a rule head's path starts at `deny`/`warn` (`Some(true)`), at another name
/// (`Some(false)`), or cannot be read (`None`).
fn verdict_root(refr: &Expr) -> Option<bool> {
    let mut expr = refr;
    loop {
        match expr {
            Expr::Var { span, .. } => return Some(VERDICT_RULES.contains(&span.text())),
            Expr::RefDot { refr, .. } | Expr::RefBrack { refr, .. } => expr = refr,
            _ => return None,
        }
    }
}

/// The hooks a body is restricted to by one of its top-level guards, or `None` when it has
/// none (or is an `else`, or rebinds `input`). Several guards intersect; taking any one of them
/// is still sound, as each alone bounds where the body can hold.
fn body_guard(body: &RuleBody) -> Option<HookSet> {
    if body.is_else || body.query.stmts.iter().any(rebinds_input) {
        return None;
    }
    body.query.stmts.iter().find_map(statement_guard)
}

/// `input.hook == "H"`, `"H" == input.hook` or `input.hook in {"H", …}`, without `with`.
fn statement_guard(stmt: &LiteralStmt) -> Option<HookSet> {
    if !stmt.with_mods.is_empty() {
        return None;
    }
    let Literal::Expr { expr, .. } = &stmt.literal else {
        return None;
    };
    match &**expr {
        Expr::BoolExpr {
            op: BoolOp::Eq,
            lhs,
            rhs,
            ..
        } => {
            if is_input_hook(lhs) {
                hook_literal(rhs)
            } else if is_input_hook(rhs) {
                hook_literal(lhs)
            } else {
                None
            }
        }
        Expr::Membership {
            key: None,
            value,
            collection,
            ..
        } if is_input_hook(value) => match &**collection {
            Expr::Set { items, .. } | Expr::Array { items, .. } => {
                items.iter().try_fold(HookSet::NONE, |set, item| {
                    hook_literal(item).map(|h| set.union(h))
                })
            }
            _ => None,
        },
        _ => None,
    }
}

/// `input.hook` or `input["hook"]`.
fn is_input_hook(expr: &Expr) -> bool {
    let (refr, field) = match expr {
        Expr::RefDot { refr, field, .. } => (refr, field.1.as_string().ok()),
        Expr::RefBrack { refr, index, .. } => match &**index {
            Expr::String { value, .. } | Expr::RawString { value, .. } => {
                (refr, value.as_string().ok())
            }
            _ => return false,
        },
        _ => return false,
    };
    matches!(&**refr, Expr::Var { span, .. } if span.text() == "input")
        && field.is_some_and(|f| &**f == "hook")
}

/// The hook a string literal names; a name that is no hook restricts the body to no hook at all
/// (`input.hook` is always one of them).
fn hook_literal(expr: &Expr) -> Option<HookSet> {
    match expr {
        Expr::String { value, .. } | Expr::RawString { value, .. } => {
            let name = value.as_string().ok()?;
            Some(
                name.parse::<HookPoint>()
                    .map(HookSet::of)
                    .unwrap_or(HookSet::NONE),
            )
        }
        _ => None,
    }
}

/// Whether a statement could bind a local variable named `input` (which would make
/// `input.hook` read something else than the hook document).
fn rebinds_input(stmt: &LiteralStmt) -> bool {
    let names_input = |text: &str| {
        text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .any(|word| word == "input")
    };
    match &stmt.literal {
        Literal::SomeVars { vars, .. } => vars.iter().any(|v| names_input(v.text())),
        Literal::SomeIn { key, value, .. } => {
            key.as_ref().is_some_and(|k| names_input(k.span().text()))
                || names_input(value.span().text())
        }
        Literal::Every { key, value, .. } => {
            key.as_ref().is_some_and(|k| names_input(k.text())) || names_input(value.text())
        }
        Literal::Expr { expr, .. } | Literal::NotExpr { expr, .. } => match &**expr {
            // `:=` binds its left side; unification `=` may bind either side.
            Expr::AssignExpr { op, lhs, rhs, .. } => {
                names_input(lhs.span().text())
                    || (*op == AssignOp::Eq && names_input(rhs.span().text()))
            }
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hooks of one module's text, as the engine indexes it.
    fn hooks(text: &str) -> Vec<HookPoint> {
        let mut engine = regorus::Engine::new();
        engine
            .add_policy("t.rego".into(), text.into())
            .expect("test policy parses");
        hooks_of(engine.get_modules()).hooks()
    }

    const HEAD: &str = "package t\nimport rego.v1\n";

    #[test]
    fn guarded_rules_are_indexed_at_their_hooks_only() {
        use HookPoint::*;
        let t = |body: &str| hooks(&format!("{HEAD}{body}"));
        assert_eq!(
            t("deny contains \"x\" if { input.hook == \"contents\"; true }"),
            [Contents]
        );
        assert_eq!(
            t("deny contains \"x\" if { \"resolve\" == input.hook }\nwarn contains \"y\" if { input[\"hook\"] == \"install\" }"),
            [Resolve, Install]
        );
        assert_eq!(
            t("deny contains \"x\" if { input.hook in {\"manifest\", \"signatures\"} }"),
            [Manifest, Signatures]
        );
        // Helpers are not verdict rules: unguarded, they change nothing.
        assert_eq!(
            t("helper := 1\ndeny contains \"x\" if { input.hook == \"resolve\"; helper == 1 }"),
            [Resolve]
        );
        // No verdict rule at all, or a guard naming no hook: silent everywhere.
        assert_eq!(t("x := 1"), []);
        assert_eq!(t("deny contains \"x\" if input.hook == \"nope\""), []);
        // Reading `input` on the right of `:=` binds nothing.
        assert_eq!(
            t("deny contains m if { m := input.image.tag; input.hook == \"resolve\" }"),
            [Resolve]
        );
    }

    #[test]
    fn anything_unproven_applies_at_every_hook() {
        let all = HookPoint::ALL.to_vec();
        for body in [
            // Unguarded.
            "deny contains \"x\" if true",
            "deny contains \"x\" if { input.image.tag == \"latest\" }",
            // The guard compares against another document.
            "deny contains \"x\" if { input.hook == \"contents\" with input as {\"hook\": \"contents\"} }",
            // Not equality.
            "deny contains \"x\" if { input.hook != \"contents\" }",
            "deny contains \"x\" if { not input.hook == \"contents\" }",
            // One of two bodies guarded.
            "deny contains \"x\" if { input.hook == \"contents\" }\ndeny contains \"y\" if { input.x == 1 }",
            // The guard is on a helper, not on the verdict rule.
            "at_contents if input.hook == \"contents\"\ndeny contains \"x\" if at_contents",
            // An else, a default, a complete rule without body.
            "deny := [\"x\"] if { input.hook == \"contents\" } else := [\"y\"]",
            "default warn := []\nwarn := [\"x\"] if input.hook == \"contents\"",
            "deny := [\"x\"]",
            // A guard on a computed hook name.
            "h := \"contents\"\ndeny contains \"x\" if input.hook == h",
            // `input` rebound in the body.
            "deny contains \"x\" if { some input in [{\"hook\": \"contents\"}]; input.hook == \"contents\" }",
            "deny contains \"x\" if { [input] = [{\"hook\": \"contents\"}]; input.hook == \"contents\" }",
        ] {
            let text = format!("{HEAD}{body}\n");
            let mut engine = regorus::Engine::new();
            // A policy regorus refuses is never indexed at all.
            if engine.add_policy("t.rego".into(), text.clone()).is_err() {
                continue;
            }
            assert_eq!(hooks(&text), all, "{body}");
        }
    }

    #[test]
    fn the_shipped_policies_are_indexed_at_the_hooks_they_document() {
        use HookPoint::*;
        let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/policies"));
        for (file, want) in [
            ("tags.rego", vec![Resolve]),
            ("registries.rego", vec![Resolve]),
            ("files.rego", vec![Contents]),
            ("vulnerabilities.rego", vec![Attestations]),
            ("signatures.rego", vec![Signatures, Attestations]),
        ] {
            let text = std::fs::read_to_string(dir.join(file)).unwrap();
            assert_eq!(hooks(&text), want, "{file}");
        }
    }
}
