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
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"
)

// startExtender runs the zenith-extender binary ($ZENITH_EXTENDER_BIN, else the release build
// of this checkout) on a free port and returns its base URL; it stops when the test ends.
func startExtender(t *testing.T, args ...string) string {
	t.Helper()
	bin := os.Getenv("ZENITH_EXTENDER_BIN")
	if bin == "" {
		bin = filepath.Join("..", "..", "target", "release", "zenith-extender")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("zenith-extender binary not found at %s (build it: cargo build --release -p zenith-extender): %v", bin, err)
	}
	cmd := exec.Command(bin, append([]string{"--listen", "127.0.0.1:0", "--exit-on-stdin-eof"}, args...)...)
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

// post sends `body` to base+path and decodes the JSON answer into `out`, rejecting unknown
// fields.
func post(t *testing.T, base, path string, body []byte, out any) {
	t.Helper()
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
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		t.Fatalf("%s: the answer does not decode into %T: %v\n%s", path, out, err, raw)
	}
}

// call posts `in` as JSON to base+path and decodes the answer into `out`, rejecting fields the
// official type does not have.
func call(t *testing.T, base, path string, in, out any) {
	t.Helper()
	body, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	post(t, base, path, body, out)
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

// watchEvents encodes objects as a watch stream (one metav1.WatchEvent per line), as the
// API server streams them and a sidecar forwards them.
func watchEvents(t *testing.T, events ...metav1.WatchEvent) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, ev := range events {
		line, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(line)
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

func event(t *testing.T, kind watch.EventType, obj any) metav1.WatchEvent {
	t.Helper()
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return metav1.WatchEvent{Type: string(kind), Object: runtime.RawExtension{Raw: raw}}
}

// watchAnswer is what POST /watch answers.
type watchAnswer struct {
	Events  int `json:"events"`
	Applied int `json:"applied"`
}

func TestBindAndWatchWithTheOfficialTypes(t *testing.T) {
	// The API server: every Binding must decode into v1.Binding with no unknown field.
	bindings := make(chan v1.Binding, 4)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		var b v1.Binding
		if err := dec.Decode(&b); err != nil || r.Method != http.MethodPost ||
			r.URL.Path != "/api/v1/namespaces/"+b.Namespace+"/pods/"+b.Name+"/binding" {
			http.Error(w, fmt.Sprintf("bad binding %s %s: %v", r.Method, r.URL.Path, err), http.StatusBadRequest)
			return
		}
		bindings <- b
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(b)
	}))
	defer api.Close()
	base := startExtender(t, "--apiserver", api.URL)
	typed := func(n v1.Node) v1.Node {
		n.TypeMeta = metav1.TypeMeta{Kind: "Node", APIVersion: "v1"}
		return n
	}

	// Nodes arrive from the node watch.
	var ans watchAnswer
	post(t, base, "/watch", watchEvents(t,
		event(t, watch.Added, typed(node("n0", 8))),
		event(t, watch.Added, typed(node("n1", 8))),
	), &ans)
	if ans.Events != 2 || ans.Applied != 2 {
		t.Fatalf("watch: %+v", ans)
	}
	names := []string{"n0", "n1"}
	filter := func(p *v1.Pod) []string {
		var r extenderv1.ExtenderFilterResult
		call(t, base, "/filter", extenderv1.ExtenderArgs{Pod: p, NodeNames: &names}, &r)
		if r.Error != "" || r.NodeNames == nil {
			t.Fatalf("filter: %+v", r)
		}
		return *r.NodeNames
	}
	w0 := pod("w0", "a", 1, 8, 0)
	placed := filter(w0)
	if len(placed) != 1 {
		t.Fatalf("filter: %v", placed)
	}

	// Bind: the extender creates the v1.Binding on the API server.
	var bound extenderv1.ExtenderBindingResult
	call(t, base, "/bind", extenderv1.ExtenderBindingArgs{
		PodName: w0.Name, PodNamespace: w0.Namespace, PodUID: w0.UID, Node: placed[0],
	}, &bound)
	if bound.Error != "" {
		t.Fatalf("bind: %+v", bound)
	}
	select {
	case b := <-bindings:
		if b.Name != "w0" || b.Namespace != "ml" || b.UID != w0.UID || b.Target.Kind != "Node" || b.Target.Name != placed[0] {
			t.Fatalf("binding: %+v", b)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the API server got no binding")
	}
	// Binding elsewhere than zenith put the pod is an Error, and nothing is created.
	other := "n0"
	if placed[0] == "n0" {
		other = "n1"
	}
	call(t, base, "/bind", extenderv1.ExtenderBindingArgs{
		PodName: w0.Name, PodNamespace: w0.Namespace, PodUID: w0.UID, Node: other,
	}, &bound)
	if !strings.Contains(bound.Error, "zenith placed pod ml/w0 on "+placed[0]) {
		t.Fatalf("bind elsewhere: %+v", bound)
	}

	// The other node is taken too; a third gang does not fit...
	if got := filter(pod("x0", "x", 1, 8, 0)); len(got) != 1 || got[0] != other {
		t.Fatalf("filter: %v", got)
	}
	if got := filter(pod("y0", "y", 1, 8, 0)); len(got) != 0 {
		t.Fatalf("filter of a gang that does not fit: %v", got)
	}
	// ...until the pod watch says w0 succeeded: its gang's GPUs come back.
	done := w0.DeepCopy()
	done.TypeMeta = metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"}
	done.Spec.NodeName = placed[0]
	done.Status.Phase = v1.PodSucceeded
	post(t, base, "/watch", watchEvents(t, event(t, watch.Modified, done)), &ans)
	if ans.Applied != 1 {
		t.Fatalf("watch: %+v", ans)
	}
	if got := filter(pod("y0", "y", 1, 8, 0)); len(got) != 1 || got[0] != placed[0] {
		t.Fatalf("filter after the pod ended: %v", got)
	}
	// A cordoned node (node watch) takes nothing new; deleting it forgets it.
	cordoned := typed(node(other, 8))
	cordoned.Spec.Unschedulable = true
	post(t, base, "/watch", watchEvents(t,
		event(t, watch.Modified, cordoned),
		event(t, watch.Deleted, typed(node(other, 8))),
	), &ans)
	if ans.Events != 2 || ans.Applied != 2 {
		t.Fatalf("watch: %+v", ans)
	}
}
