//! Test support: a fake process environment for functions that take their variables through a
//! lookup closure (sharding and memory-budget defaults).

/// A lookup that answers `pairs` (name, value) and nothing else.
pub(crate) fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}
