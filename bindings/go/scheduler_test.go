package zenith

import (
	"errors"
	"path/filepath"
	"testing"
)

func h100Node(name string) NodeSpec {
	return NodeSpec{Name: name, CPUMilli: 64000, MemoryMiB: 512 * 1024, GPUs: 8, GPUType: "H100",
		Islands: [][]uint32{{0, 1, 2, 3}, {4, 5, 6, 7}}, Rack: "r0"}
}

func TestSchedulerGangsPreemptionQueries(t *testing.T) {
	s, err := NewScheduler(SchedulerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i, n := range []string{"n0", "n1"} {
		id, err := s.AddNode(h100Node(n), 0)
		if err != nil || id != uint32(i) {
			t.Fatalf("AddNode(%s) = %d, %v", n, id, err)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Submit(JobSpec{ID: 1, GPUs: 4, GangSize: 2, Preemptible: true}, 10))
	must(s.Submit(JobSpec{ID: 2, GPUs: 8, Preemptible: true, Command: []string{"/usr/bin/python3", "train.py"},
		Env: [][2]string{{"NCCL_DEBUG", "INFO"}}}, 10))
	decisions, err := s.Schedule(20)
	must(err)
	if len(decisions) != 2 {
		t.Fatalf("decisions: %+v", decisions)
	}
	used := map[[2]uint32]bool{}
	for _, d := range decisions {
		if d.Kind != DecisionStart {
			t.Fatalf("not a start: %+v", d)
		}
		for _, m := range d.Members {
			for _, g := range m.GPUs {
				key := [2]uint32{m.NodeID, g}
				if used[key] {
					t.Fatalf("GPU %v given twice", key)
				}
				used[key] = true
			}
		}
		must(s.JobStarted(d.Job, 30))
	}
	if _, ok, err := s.TestOnly(JobSpec{ID: 9, GPUs: 1}); ok || err != nil {
		t.Fatalf("TestOnly on a full cluster: %v %v", ok, err)
	}
	must(s.Submit(JobSpec{ID: 3, GPUs: 8, GangSize: 2, Priority: 5, MaxRuntimeMs: 60000, Locality: LocalitySpread}, 40))
	decisions, err = s.Schedule(40)
	must(err)
	if len(decisions) != 3 || decisions[0].Kind != DecisionPreempt || decisions[1].Kind != DecisionPreempt ||
		decisions[2].Kind != DecisionStart || decisions[0].By != 3 {
		t.Fatalf("preemption: %+v", decisions)
	}
	must(s.JobStarted(3, 50))
	at, ok, err := s.WillRun(JobSpec{ID: 10, GPUs: 8})
	if err != nil || !ok || at != 50+60000 {
		t.Fatalf("WillRun = %d %v %v", at, ok, err)
	}
	if st, err := s.JobState(1); err != nil || st != JobSuspended {
		t.Fatalf("JobState(1) = %v %v", st, err)
	}
	stats, err := s.Stats()
	must(err)
	if stats.PreemptionsTotal != 2 || stats.GPUs != 16 || stats.Jobs[JobRunning] != 1 {
		t.Fatalf("stats: %+v", stats)
	}
}

func TestSchedulerErrors(t *testing.T) {
	s, err := NewScheduler(SchedulerOptions{Policy: "fifo"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddNode(h100Node("n0"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddNode(h100Node("n0"), 0); !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("duplicate node: %v", err)
	}
	if err := s.Cancel(99, 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown job: %v", err)
	}
	err = (&JobSpec{ID: 1, GPUs: 1, Command: []string{"/bin/true"}, Env: [][2]string{{"1BAD", "x"}}}).Validate()
	var zerr *Error
	if !errors.As(err, &zerr) || zerr.Code != ErrInvalidArgument {
		t.Fatalf("bad env: %v", err)
	}
	if err := s.Submit(JobSpec{ID: 1, GPUs: 1}, 5); err != nil {
		t.Fatal(err)
	}
	if err := s.Cancel(1, 6); err != nil {
		t.Fatal(err)
	}
	if err := s.Cancel(1, 7); !errors.Is(err, ErrInvalidState) {
		t.Fatalf("cancel twice: %v", err)
	}
	if _, err := NewScheduler(SchedulerOptions{Policy: "lottery"}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("bad policy: %v", err)
	}
	s.Close()
	s.Close()
	if _, err := s.Schedule(10); !errors.Is(err, ErrSchedulerClosed) {
		t.Fatalf("closed: %v", err)
	}
}

func TestSchedulerRestoresFromItsJournal(t *testing.T) {
	journal := filepath.Join(t.TempDir(), "sched.journal")
	s, err := NewScheduler(SchedulerOptions{Journal: journal})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddNode(h100Node("n0"), 0); err != nil {
		t.Fatal(err)
	}
	for id := uint64(1); id <= 2; id++ {
		if err := s.Submit(JobSpec{ID: id, GPUs: 8}, 0); err != nil {
			t.Fatal(err)
		}
	}
	d, err := s.Schedule(10)
	if err != nil || len(d) != 1 {
		t.Fatalf("%v %v", d, err)
	}
	running := d[0].Job
	if err := s.JobStarted(running, 20); err != nil {
		t.Fatal(err)
	}
	s.Close()

	r, err := NewScheduler(SchedulerOptions{Journal: journal})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if st, _ := r.JobState(running); st != JobRunning {
		t.Fatalf("restored state %v", st)
	}
	if err := r.JobCompleted(running, 100); err != nil {
		t.Fatal(err)
	}
	d, err = r.Schedule(100)
	if err != nil || len(d) != 1 || d[0].Job != 3-running {
		t.Fatalf("after restore: %+v %v", d, err)
	}
}

func TestSchedulerQueueQuota(t *testing.T) {
	s, err := NewScheduler(SchedulerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.AddNode(h100Node("n0"), 0); err != nil {
		t.Fatal(err)
	}
	unlimited := uint64(1) << 40
	if err := s.SetQueue(QueueSpec{Name: "small", Nominal: &Quantity{GPUMilli: 4000, CPUMilli: unlimited, MemoryMiB: unlimited}, Cohort: "lab"}); err != nil {
		t.Fatal(err)
	}
	for id := uint64(1); id <= 2; id++ {
		if err := s.Submit(JobSpec{ID: id, GPUs: 4, Queue: "small"}, 0); err != nil {
			t.Fatal(err)
		}
	}
	d, err := s.Schedule(1)
	if err != nil || len(d) != 1 {
		t.Fatalf("the quota admits one job: %+v %v", d, err)
	}
	if err := s.SetQueue(QueueSpec{Name: "bad name"}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("bad queue name: %v", err)
	}
}
