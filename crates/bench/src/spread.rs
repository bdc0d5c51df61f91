//! Where a contender's objects live: one namespace (the operators watch only it), or the
//! same N objects dealt round-robin over many namespaces (the operators watch them all,
//! as a platform team's cluster-wide install does). Kubernetes' scalability thresholds
//! are per namespace as well as per cluster (2000 Deployments and 5000 Services per
//! namespace), so the many-namespace profile is the shape a large cluster has.

use kube::{Api, Client, Resource};

/// The namespaces of one contender: `base` alone, or `base-0` to `base-{count-1}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spread {
    base: String,
    count: usize,
}

/// An object of a run: its namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Placed {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl Spread {
    /// `count` namespaces named after `base` (one, named `base`, when `count` ≤ 1).
    pub fn new(base: &str, count: usize) -> Self {
        Spread { base: base.to_owned(), count: count.max(1) }
    }

    /// The name the namespaces are named after.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// How many namespaces.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Every namespace, in order.
    pub fn namespaces(&self) -> Vec<String> {
        (0..self.count).map(|j| self.name(j)).collect()
    }

    /// The namespace of the `i`-th object.
    pub fn namespace_of(&self, i: usize) -> String {
        self.name(i % self.count)
    }

    /// Whether `namespace` is one of these.
    pub fn contains(&self, namespace: &str) -> bool {
        match self.count {
            1 => namespace == self.base,
            _ => namespace
                .strip_prefix(&self.base)
                .and_then(|rest| rest.strip_prefix('-'))
                .and_then(|j| j.parse::<usize>().ok())
                .is_some_and(|j| j < self.count && namespace == self.name(j)),
        }
    }

    /// The one namespace an operator is told to watch; `None` (all namespaces) when
    /// there are several.
    pub fn scope(&self) -> Option<&str> {
        (self.count == 1).then_some(self.base.as_str())
    }

    /// An API over these namespaces: the one namespace, or all of them (callers keep
    /// what [`Spread::contains`]).
    pub fn api<K>(&self, client: &Client) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        match self.scope() {
            Some(namespace) => Api::namespaced(client.clone(), namespace),
            None => Api::all(client.clone()),
        }
    }

    /// The `i`-th object named `name`, placed.
    pub fn place(&self, i: usize, name: String) -> Placed {
        Placed { namespace: self.namespace_of(i), name }
    }

    fn name(&self, j: usize) -> String {
        match self.count {
            1 => self.base.clone(),
            _ => format!("{}-{j}", self.base),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_namespace_is_the_base_and_the_operators_scope() {
        let one = Spread::new("bench-operator-7", 1);
        assert_eq!(one.namespaces(), ["bench-operator-7"]);
        assert_eq!(one.namespace_of(41), "bench-operator-7");
        assert_eq!(one.scope(), Some("bench-operator-7"));
        assert!(one.contains("bench-operator-7"));
        assert!(!one.contains("bench-operator-7-0"));
        assert_eq!(Spread::new("b", 0), Spread::new("b", 1), "no namespaces at all is one");
    }

    #[test]
    fn many_namespaces_take_the_objects_in_turn_and_watch_the_cluster() {
        let many = Spread::new("bench-operator-7", 100);
        assert_eq!(many.namespaces().len(), 100);
        assert_eq!(many.namespace_of(0), "bench-operator-7-0");
        assert_eq!(many.namespace_of(101), "bench-operator-7-1");
        assert_eq!(many.scope(), None);
        assert!(many.contains("bench-operator-7-99"));
        for other in
            ["bench-operator-7", "bench-operator-7-100", "bench-operator-7-07", "bench-floor-7-1", "kube-system"]
        {
            assert!(!many.contains(other), "{other}");
        }
    }
}
