//! Kubernetes resource quantities (`500m`, `1Gi`, `1e3`), compared by value: the API
//! server stores them in canonical form (`0.5` becomes `500m`, `2048Mi` becomes
//! `2Gi`), so comparing text would see a difference that is not one.

/// The value of a quantity, or `None` if `text` is not one.
pub fn parse(text: &str) -> Option<f64> {
    let (sign, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (-1.0, rest),
        None => (1.0, text.strip_prefix('+').unwrap_or(text)),
    };
    let digits_end = unsigned.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(unsigned.len());
    let (number, suffix) = unsigned.split_at(digits_end);
    if !number.chars().any(|c| c.is_ascii_digit()) || number.matches('.').count() > 1 {
        return None;
    }
    let number: f64 = number.parse().ok()?;
    let multiplier = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0_f64.powi(2),
        "Gi" => 1024.0_f64.powi(3),
        "Ti" => 1024.0_f64.powi(4),
        "Pi" => 1024.0_f64.powi(5),
        "Ei" => 1024.0_f64.powi(6),
        exponent => {
            let digits = exponent.strip_prefix(['e', 'E'])?;
            let unsigned_digits = digits.strip_prefix(['+', '-']).unwrap_or(digits);
            if unsigned_digits.is_empty() || !unsigned_digits.chars().all(|c| c.is_ascii_digit()) {
                return None;
            }
            10f64.powi(digits.parse().ok()?)
        }
    };
    Some(sign * number * multiplier)
}

/// Whether two quantity texts mean the same amount.
pub fn same(a: &str, b: &str) -> bool {
    match (parse(a), parse(b)) {
        (Some(a), Some(b)) => (a - b).abs() <= f64::EPSILON * a.abs().max(b.abs()).max(1.0),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms_are_the_same_amount() {
        for (a, b) in
            [("0.5", "500m"), ("1000m", "1"), ("1.5G", "1500M"), ("2048Mi", "2Gi"), ("1e3", "1k"), ("+2", "2")]
        {
            assert!(same(a, b), "{a} = {b}");
        }
        assert!(!same("1", "2"));
        assert!(!same("1Gi", "1G"));
    }

    #[test]
    fn non_quantities_are_refused() {
        for bad in ["lots", "", "Mi", "1.2.3", "1Mb", "1e", "- 1"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
