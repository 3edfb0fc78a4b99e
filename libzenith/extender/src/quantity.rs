//! Kubernetes resource quantities (`"8"`, `"500m"`, `"1.5"`, `"32Gi"`, `"1e3"`, `"2M"`).

/// A quantity's value, or an error naming what is wrong. JSON numbers are accepted too.
pub fn parse(v: &serde_json::Value) -> Result<f64, String> {
    let x = match v {
        serde_json::Value::String(s) => parse_str(s)?,
        serde_json::Value::Number(n) => n.as_f64().ok_or("not a number")?,
        other => return Err(format!("not a quantity: {other}")),
    };
    if !x.is_finite() || !(0.0..=1e18).contains(&x) {
        return Err(format!("quantity out of range: {v}"));
    }
    Ok(x)
}

fn parse_str(s: &str) -> Result<f64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let bad = || format!("not a quantity: {s:?}");
    let base: f64 = num.parse().map_err(|_| bad())?;
    let mult = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        e if e.starts_with(['e', 'E']) => {
            let exp: i32 = e[1..].parse().map_err(|_| bad())?;
            if !(-30..=30).contains(&exp) {
                return Err(bad());
            }
            10f64.powi(exp)
        }
        _ => return Err(bad()),
    };
    Ok(base * mult)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn suffixes_and_errors() {
        assert_eq!(parse(&json!("8")).unwrap(), 8.0);
        assert_eq!(parse(&json!("500m")).unwrap(), 0.5);
        assert_eq!(
            parse(&json!("32Gi")).unwrap(),
            32.0 * 1024.0 * 1024.0 * 1024.0
        );
        assert_eq!(parse(&json!("2k")).unwrap(), 2000.0);
        assert_eq!(parse(&json!("1e3")).unwrap(), 1000.0);
        assert_eq!(parse(&json!(4)).unwrap(), 4.0);
        assert!(parse(&json!("8 GPUs")).is_err());
        assert!(parse(&json!("-1")).is_err());
        assert!(parse(&json!(null)).is_err());
        assert!(parse(&json!("1e400")).is_err());
    }
}
