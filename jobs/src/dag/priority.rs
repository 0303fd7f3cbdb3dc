//! Which ready table starts first: the one with the longest chain of selected tables still to
//! run after it. A run has a few task slots and many tables ready at once; starting a table
//! nothing waits for before one at the head of a long chain lengthens the run by the chain's
//! wait (HEFT's "upward rank", with every table weighing the same).

use std::collections::{BTreeMap, BTreeSet};

use super::Dag;

impl Dag {
    /// `selected` (in DAG order) reordered so that each table comes before those with a
    /// shorter chain of selected tables downstream of it; equal chains keep their order.
    /// Upstream tables keep coming before their downstream ones: a table's chain is longer
    /// than each of its readers'.
    pub fn critical_first(&self, selected: &[String]) -> Vec<String> {
        let chosen: BTreeSet<&str> = selected.iter().map(String::as_str).collect();
        let mut chain: BTreeMap<&str, usize> = BTreeMap::new();
        for name in selected.iter().rev() {
            let longest_reader = self
                .downstream_of(name)
                .iter()
                .filter(|d| chosen.contains(d.as_str()))
                .filter_map(|d| chain.get(d.as_str()))
                .max()
                .copied()
                .unwrap_or(0);
            chain.insert(name, longest_reader + 1);
        }
        let mut ordered = selected.to_vec();
        ordered.sort_by_key(|name| std::cmp::Reverse(chain[name.as_str()]));
        ordered
    }
}

#[cfg(test)]
mod tests {
    use crate::dag::Dag;
    use crate::spec::parse_spec;

    fn dag(tables: &[(&str, &str)]) -> Dag {
        let mut s = String::from("[pipeline]\nname = \"p\"\n");
        for (name, from) in tables {
            s += &match *from {
                "" => format!(
                    "\n[[table]]\nname = \"{name}\"\nlayer = \"bronze\"\nsource = {{ path = \"x.csv\", format = \"csv\" }}\n"
                ),
                from => format!(
                    "\n[[table]]\nname = \"{name}\"\nlayer = \"silver\"\nsql = \"SELECT * FROM {from}\"\n"
                ),
            };
        }
        Dag::build(&parse_spec(&s, "p.toml").unwrap()).unwrap()
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_head_of_the_longest_chain_goes_first_and_readers_stay_after_their_inputs() {
        // raw_a → side (a sink); raw_b → items → facts → daily → gate: raw_b heads the longer chain.
        let d = dag(&[
            ("raw_a", ""),
            ("side", "raw_a"),
            ("raw_b", ""),
            ("items", "raw_b"),
            ("facts", "items"),
            ("daily", "facts"),
            ("gate", "daily JOIN side USING (id)"),
        ]);
        let order = d.critical_first(d.order());
        assert_eq!(
            order,
            names(&["raw_b", "items", "raw_a", "facts", "side", "daily", "gate"])
        );
        for (i, name) in order.iter().enumerate() {
            for up in d.upstream_of(name) {
                assert!(order[..i].contains(up), "{up} after its reader {name}");
            }
        }
    }

    #[test]
    fn only_selected_readers_make_a_chain_longer() {
        let d = dag(&[
            ("raw_a", ""),
            ("a1", "raw_a"),
            ("a2", "a1"),
            ("raw_b", ""),
            ("b1", "raw_b"),
        ]);
        let order = d.critical_first(&names(&["raw_a", "raw_b", "b1"]));
        assert_eq!(order, names(&["raw_b", "raw_a", "b1"]));
    }
}
