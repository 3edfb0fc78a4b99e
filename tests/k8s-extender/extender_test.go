// Package extender checks zenith's Kubernetes scheduler extender against the official Go types:
// requests are built with k8s.io/kube-scheduler/extender/v1 and k8s.io/api/core/v1 and sent to
// a real zenith-extender process over HTTP; every answer must decode into the official type
// with unknown fields rejected.
package extender

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"
)

// startExtender runs the zenith-extender binary ($ZENITH_EXTENDER_BIN, else the release build
// of this checkout) on a free port and returns its base URL; it stops when the test ends.
func startExtender(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("ZENITH_EXTENDER_BIN")
	if bin == "" {
		bin = filepath.Join("..", "..", "target", "release", "zenith-extender")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("zenith-extender binary not found at %s (build it: cargo build --release -p zenith-extender): %v", bin, err)
	}
	cmd := exec.Command(bin, "--listen", "127.0.0.1:0", "--exit-on-stdin-eof")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Error("zenith-extender did not stop when its stdin closed")
		}
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- s
		io.Copy(io.Discard, stdout)
	}()
	select {
	case s := <-line:
		const prefix = "listening on "
		if !strings.HasPrefix(s, prefix) {
			t.Fatalf("unexpected first line from zenith-extender: %q", s)
		}
		return strings.TrimSpace(strings.TrimPrefix(s, prefix))
	case <-time.After(30 * time.Second):
		t.Fatal("zenith-extender did not start within 30 s")
	}
	return ""
}

// call posts `in` as JSON to base+path and decodes the answer into `out`, rejecting fields the
// official type does not have.
func call(t *testing.T, base, path string, in, out any) {
	t.Helper()
	body, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Post(base+path, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: HTTP %d: %s", path, resp.StatusCode, raw)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s: Content-Type %q", path, ct)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		t.Fatalf("%s: the answer does not decode into %T: %v\n%s", path, out, err, raw)
	}
}

func node(name string, gpus int64) v1.Node {
	return v1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:   name,
			Labels: map[string]string{"nvidia.com/gpu.product": "H100", "zenith.io/rack": "r0"},
		},
		Status: v1.NodeStatus{
			Allocatable: v1.ResourceList{
				"nvidia.com/gpu":  *resource.NewQuantity(gpus, resource.DecimalSI),
				v1.ResourceCPU:    resource.MustParse("64"),
				v1.ResourceMemory: resource.MustParse("512Gi"),
			},
		},
	}
}

func pod(name, gang string, size int, gpus int64, priority int32) *v1.Pod {
	annotations := map[string]string{}
	if gang != "" {
		annotations["zenith.io/gang"] = gang
		annotations["zenith.io/gang-size"] = fmt.Sprint(size)
	}
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: "ml", UID: types.UID("uid-" + name), Annotations: annotations,
		},
		Spec: v1.PodSpec{
			Priority: &priority,
			Containers: []v1.Container{{
				Name: "main",
				Resources: v1.ResourceRequirements{Requests: v1.ResourceList{
					"nvidia.com/gpu":  *resource.NewQuantity(gpus, resource.DecimalSI),
					v1.ResourceCPU:    resource.MustParse("8"),
					v1.ResourceMemory: resource.MustParse("64Gi"),
				}},
			}},
		},
	}
}

func TestFilterPrioritizePreemptWithTheOfficialTypes(t *testing.T) {
	base := startExtender(t)
	nodes := &v1.NodeList{Items: []v1.Node{node("n0", 8), node("n1", 8), node("n2", 8)}}
	names := []string{"n0", "n1", "n2"}

	// Filter with Nodes: the first member of a 2 x 8 GPU gang gets one whole node, and the
	// node comes back as a v1.Node.
	var first extenderv1.ExtenderFilterResult
	call(t, base, "/filter", extenderv1.ExtenderArgs{Pod: pod("w0", "train", 2, 8, 0), Nodes: nodes}, &first)
	if first.Error != "" || first.Nodes == nil || len(first.Nodes.Items) != 1 {
		t.Fatalf("filter: %+v", first)
	}
	got := first.Nodes.Items[0]
	if q := got.Status.Allocatable["nvidia.com/gpu"]; q.Value() != 8 {
		t.Fatalf("the node did not come back intact: %+v", got)
	}
	if len(first.FailedAndUnresolvableNodes) != 2 {
		t.Fatalf("the other nodes should be unresolvable for this member: %+v", first)
	}

	// Filter with NodeNames (nodeCacheCapable): the second member gets another node.
	var second extenderv1.ExtenderFilterResult
	call(t, base, "/filter", extenderv1.ExtenderArgs{Pod: pod("w1", "train", 2, 8, 0), NodeNames: &names}, &second)
	if second.Error != "" || second.NodeNames == nil || len(*second.NodeNames) != 1 {
		t.Fatalf("filter: %+v", second)
	}
	if (*second.NodeNames)[0] == got.Name {
		t.Fatalf("both members on %s", got.Name)
	}

	// Prioritize: the member's node scores MaxExtenderPriority, the others the minimum.
	var prio extenderv1.HostPriorityList
	call(t, base, "/prioritize", extenderv1.ExtenderArgs{Pod: pod("w0", "train", 2, 8, 0), NodeNames: &names}, &prio)
	if len(prio) != 3 {
		t.Fatalf("prioritize: %+v", prio)
	}
	for _, h := range prio {
		want := extenderv1.MinExtenderPriority
		if h.Host == got.Name {
			want = extenderv1.MaxExtenderPriority
		}
		if h.Score != want {
			t.Fatalf("prioritize: %+v", prio)
		}
	}

	// A gang of 2 x 8 GPUs does not fit on the one node left: every node fails, with a reason.
	var full extenderv1.ExtenderFilterResult
	call(t, base, "/filter", extenderv1.ExtenderArgs{Pod: pod("b0", "big", 2, 8, 0), NodeNames: &names}, &full)
	if len(*full.NodeNames) != 0 || len(full.FailedNodes) != 3 {
		t.Fatalf("filter of a gang that does not fit: %+v", full)
	}
	for n, why := range full.FailedNodes {
		if !strings.Contains(why, "does not fit") {
			t.Fatalf("node %s: reason %q", n, why)
		}
	}

	// Preempt: the node whose victim is a member of a non-preemptible zenith gang is dropped;
	// the node whose victim is an ordinary pod is kept, with its victims as UIDs.
	other := pod("web", "", 0, 0, 0)
	var pre extenderv1.ExtenderPreemptionResult
	call(t, base, "/preempt", extenderv1.ExtenderPreemptionArgs{
		Pod: pod("hi", "", 0, 8, 1000),
		NodeNameToVictims: map[string]*extenderv1.Victims{
			got.Name: {Pods: []*v1.Pod{pod("w0", "train", 2, 8, 0)}},
			"n9":     {Pods: []*v1.Pod{other}, NumPDBViolations: 1},
		},
	}, &pre)
	if len(pre.NodeNameToMetaVictims) != 1 {
		t.Fatalf("preempt: %+v", pre)
	}
	kept := pre.NodeNameToMetaVictims["n9"]
	if kept == nil || len(kept.Pods) != 1 || kept.Pods[0].UID != string(other.UID) || kept.NumPDBViolations != 1 {
		t.Fatalf("preempt: %+v", pre)
	}

	// Preempt with meta victims (nodeCacheCapable) decodes too.
	var meta extenderv1.ExtenderPreemptionResult
	call(t, base, "/preempt", extenderv1.ExtenderPreemptionArgs{
		Pod: pod("hi", "", 0, 8, 1000),
		NodeNameToMetaVictims: map[string]*extenderv1.MetaVictims{
			"n9": {Pods: []*extenderv1.MetaPod{{UID: "uid-web"}}},
		},
	}, &meta)
	if len(meta.NodeNameToMetaVictims) != 1 {
		t.Fatalf("preempt (meta): %+v", meta)
	}
}
