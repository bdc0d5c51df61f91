module webapp-operator.local/hack/images/pause

go 1.22
