package extender

import (
	_ "k8s.io/api/core/v1"
	_ "k8s.io/apimachinery/pkg/api/resource"
	_ "k8s.io/kube-scheduler/extender/v1"
)
