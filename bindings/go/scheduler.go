package zenith

/*
#include <stdlib.h>
#include <zenith.h>
*/
import "C"

import (
	"errors"
	"runtime"
	"sync"
	"unsafe"
)

// The gang scheduler: a deterministic decision core with an injected clock. Every call that
// depends on time takes now (milliseconds on any clock, never decreasing). Describe nodes and
// jobs with [NodeSpec] and [JobSpec], call [Scheduler.Schedule] and act on the [Decision]s; a
// scheduler with a journal restores itself from that file.

// Scheduler error codes, equal to the ZENITH_ERR_* values of zenith.h.
const (
	ErrAlreadyExists Status = C.ZENITH_ERR_ALREADY_EXISTS // a job id, node name or queue already in use
	ErrInvalidState  Status = C.ZENITH_ERR_INVALID_STATE  // not allowed in the job's or node's state
)

// ErrSchedulerClosed is returned by methods of a closed Scheduler.
var ErrSchedulerClosed = errors.New("zenith: use of a closed scheduler")

// JobState is a job's state (the ZENITH_JOB_* values).
type JobState int32

// Job states.
const (
	JobPending   JobState = C.ZENITH_JOB_PENDING
	JobQueued    JobState = C.ZENITH_JOB_QUEUED
	JobScheduled JobState = C.ZENITH_JOB_SCHEDULED
	JobRunning   JobState = C.ZENITH_JOB_RUNNING
	JobSuspended JobState = C.ZENITH_JOB_SUSPENDED
	JobCompleted JobState = C.ZENITH_JOB_COMPLETED
	JobFailed    JobState = C.ZENITH_JOB_FAILED
	JobCancelled JobState = C.ZENITH_JOB_CANCELLED
)

// Locality says where a gang's members may go relative to each other.
type Locality int32

// Localities.
const (
	LocalityAny        Locality = C.ZENITH_LOCALITY_ANY
	LocalitySameNode   Locality = C.ZENITH_LOCALITY_SAME_NODE
	LocalitySameIsland Locality = C.ZENITH_LOCALITY_SAME_ISLAND
	LocalitySameRack   Locality = C.ZENITH_LOCALITY_SAME_RACK
	LocalitySpread     Locality = C.ZENITH_LOCALITY_SPREAD
)

// DecisionKind is what a decision asks the executor to do.
type DecisionKind int32

// Decision kinds.
const (
	DecisionStart   DecisionKind = C.ZENITH_DECISION_START
	DecisionPreempt DecisionKind = C.ZENITH_DECISION_PREEMPT
	DecisionRequeue DecisionKind = C.ZENITH_DECISION_REQUEUE
	DecisionFail    DecisionKind = C.ZENITH_DECISION_FAIL
)

// NodeSpec describes a node: allocatable CPU (milli-CPUs) and memory (MiB), GPUs of one type
// (indices 0..GPUs-1), NVLink islands as lists of GPU indices, and topology labels.
type NodeSpec struct {
	Name         string
	CPUMilli     uint64
	MemoryMiB    uint64
	GPUs         uint32
	GPUType      string // default "GPU"
	GPUMemoryMiB uint64
	Islands      [][]uint32
	Rack         string
	Switch       string
	Zone         string
}

// JobSpec describes a job: GangSize members that start together or not at all, each asking for
// GPUs whole GPUs (or a GPUShareMilli share of one GPU), CPUMilli and MemoryMiB. Command and Env
// are data for the executor, validated by the scheduler.
type JobSpec struct {
	ID             uint64
	Name           string // default "job"
	User           string // default "default"
	Queue          string // default "default"
	GPUs           uint32
	GPUShareMilli  uint32 // 1..999 for a share of one GPU; 0 for whole GPUs
	GPUTypes       []string
	CPUMilli       uint64
	MemoryMiB      uint64
	GangSize       uint32 // default 1
	Locality       Locality
	Priority       int32
	Preemptible    bool
	NotRestartable bool
	MaxRuntimeMs   uint64 // 0: no limit
	Command        []string
	Env            [][2]string
}

// Member says where one gang member runs.
type Member struct {
	NodeID   uint32
	Node     string
	GPUs     []uint32
	GPUMilli []uint32
}

// Decision is one decision of a pass: Start (Members says where), Preempt (By is the job it makes
// room for), Requeue or Fail (Reason is a ZENITH_REASON_* value).
type Decision struct {
	Kind    DecisionKind
	Job     uint64
	By      uint64
	Reason  int32
	Members []Member
}

// SchedulerOptions configures [NewScheduler]: the policy ("zenith" by default, "fifo",
// "first-fit", "best-fit", "sjf") and an optional journal file, restored from when it exists.
type SchedulerOptions struct {
	Policy      string
	Journal     string
	JournalSync bool
}

// Scheduler is a gang scheduler. Its methods are safe to call from several goroutines. Close it
// (a finalizer is only a backstop).
type Scheduler struct {
	mu sync.Mutex
	h  *C.zenith_scheduler
}

func cstr(s string) *C.char { return C.CString(s) }

func free(p *C.char) { C.free(unsafe.Pointer(p)) }

// call runs f with a fresh error slot and turns a negative status into an error.
func call(f func(err **C.zenith_error) C.zenith_status) (C.zenith_status, error) {
	var cerr *C.zenith_error
	st := f(&cerr)
	if st < 0 {
		return st, takeError(st, cerr)
	}
	return st, nil
}

// NewScheduler creates a scheduler (or restores one from opts.Journal).
func NewScheduler(opts SchedulerOptions) (*Scheduler, error) {
	var o *C.zenith_scheduler_options
	if _, err := call(func(e **C.zenith_error) C.zenith_status { return C.zenith_scheduler_options_new(&o, e) }); err != nil {
		return nil, err
	}
	defer C.zenith_scheduler_options_free(o)
	policy := opts.Policy
	if policy == "" {
		policy = "zenith"
	}
	p := cstr(policy)
	defer free(p)
	if _, err := call(func(e **C.zenith_error) C.zenith_status { return C.zenith_scheduler_options_set_policy(o, p, e) }); err != nil {
		return nil, err
	}
	if opts.Journal != "" {
		j := cstr(opts.Journal)
		defer free(j)
		sync := C.int32_t(0)
		if opts.JournalSync {
			sync = 1
		}
		if _, err := call(func(e **C.zenith_error) C.zenith_status {
			return C.zenith_scheduler_options_set_journal(o, j, sync, e)
		}); err != nil {
			return nil, err
		}
	}
	s := &Scheduler{}
	if _, err := call(func(e **C.zenith_error) C.zenith_status { return C.zenith_scheduler_new(o, &s.h, e) }); err != nil {
		return nil, err
	}
	runtime.SetFinalizer(s, (*Scheduler).Close)
	return s, nil
}

// Close frees the scheduler (its journal is kept). Idempotent.
func (s *Scheduler) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.h != nil {
		C.zenith_scheduler_free(s.h)
		s.h = nil
	}
	runtime.SetFinalizer(s, nil)
	return nil
}

// with runs f on the live handle under the scheduler's lock.
func (s *Scheduler) with(f func(h *C.zenith_scheduler, e **C.zenith_error) C.zenith_status) (C.zenith_status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.h == nil {
		return 0, ErrSchedulerClosed
	}
	st, err := call(func(e **C.zenith_error) C.zenith_status { return f(s.h, e) })
	runtime.KeepAlive(s)
	return st, err
}

func (n *NodeSpec) build() (*C.zenith_node_spec, error) {
	var spec *C.zenith_node_spec
	name := cstr(n.Name)
	defer free(name)
	if _, err := call(func(e **C.zenith_error) C.zenith_status {
		return C.zenith_node_spec_new(name, C.uint64_t(n.CPUMilli), C.uint64_t(n.MemoryMiB), &spec, e)
	}); err != nil {
		return nil, err
	}
	fail := func(err error) (*C.zenith_node_spec, error) {
		C.zenith_node_spec_free(spec)
		return nil, err
	}
	if n.GPUs > 0 {
		t := n.GPUType
		if t == "" {
			t = "GPU"
		}
		ct := cstr(t)
		defer free(ct)
		if _, err := call(func(e **C.zenith_error) C.zenith_status {
			return C.zenith_node_spec_add_gpus(spec, C.uint32_t(n.GPUs), ct, C.uint64_t(n.GPUMemoryMiB), e)
		}); err != nil {
			return fail(err)
		}
	}
	for _, island := range n.Islands {
		var ptr *C.uint32_t
		if len(island) > 0 {
			ptr = (*C.uint32_t)(C.malloc(C.size_t(4 * len(island))))
			copy(unsafe.Slice((*uint32)(unsafe.Pointer(ptr)), len(island)), island)
		}
		_, err := call(func(e **C.zenith_error) C.zenith_status {
			return C.zenith_node_spec_add_nvlink_island(spec, ptr, C.size_t(len(island)), e)
		})
		C.free(unsafe.Pointer(ptr))
		if err != nil {
			return fail(err)
		}
	}
	for _, label := range [][2]string{{"rack", n.Rack}, {"switch", n.Switch}, {"zone", n.Zone}} {
		if label[1] == "" {
			continue
		}
		k, v := cstr(label[0]), cstr(label[1])
		_, err := call(func(e **C.zenith_error) C.zenith_status { return C.zenith_node_spec_set_label(spec, k, v, e) })
		free(k)
		free(v)
		if err != nil {
			return fail(err)
		}
	}
	return spec, nil
}

func (j *JobSpec) build() (*C.zenith_job_spec, error) {
	var spec *C.zenith_job_spec
	orDefault := func(s, d string) string {
		if s == "" {
			return d
		}
		return s
	}
	name := cstr(orDefault(j.Name, "job"))
	defer free(name)
	if _, err := call(func(e **C.zenith_error) C.zenith_status {
		return C.zenith_job_spec_new(C.uint64_t(j.ID), name, &spec, e)
	}); err != nil {
		return nil, err
	}
	text := func(f func(*C.zenith_job_spec, *C.char, **C.zenith_error) C.zenith_status, v string) error {
		c := cstr(v)
		defer free(c)
		_, err := call(func(e **C.zenith_error) C.zenith_status { return f(spec, c, e) })
		return err
	}
	steps := []func() error{
		func() error {
			return text(func(s *C.zenith_job_spec, c *C.char, e **C.zenith_error) C.zenith_status {
				return C.zenith_job_spec_set_user(s, c, e)
			}, orDefault(j.User, "default"))
		},
		func() error {
			return text(func(s *C.zenith_job_spec, c *C.char, e **C.zenith_error) C.zenith_status {
				return C.zenith_job_spec_set_queue(s, c, e)
			}, orDefault(j.Queue, "default"))
		},
		func() error {
			_, err := call(func(e **C.zenith_error) C.zenith_status {
				if j.GPUShareMilli > 0 {
					return C.zenith_job_spec_set_gpu_share(spec, C.uint32_t(j.GPUShareMilli), e)
				}
				return C.zenith_job_spec_set_gpus(spec, C.uint32_t(j.GPUs), e)
			})
			return err
		},
		func() error {
			for _, t := range j.GPUTypes {
				if err := text(func(s *C.zenith_job_spec, c *C.char, e **C.zenith_error) C.zenith_status {
					return C.zenith_job_spec_add_gpu_type(s, c, e)
				}, t); err != nil {
					return err
				}
			}
			return nil
		},
		func() error {
			_, err := call(func(e **C.zenith_error) C.zenith_status {
				if st := C.zenith_job_spec_set_cpus(spec, C.uint64_t(j.CPUMilli), e); st < 0 {
					return st
				}
				if st := C.zenith_job_spec_set_memory(spec, C.uint64_t(j.MemoryMiB), e); st < 0 {
					return st
				}
				gang := j.GangSize
				if gang == 0 {
					gang = 1
				}
				if st := C.zenith_job_spec_set_gang(spec, C.uint32_t(gang), C.zenith_locality(j.Locality), e); st < 0 {
					return st
				}
				if st := C.zenith_job_spec_set_priority(spec, C.int32_t(j.Priority), boolInt(j.Preemptible), e); st < 0 {
					return st
				}
				if st := C.zenith_job_spec_set_restartable(spec, boolInt(!j.NotRestartable), e); st < 0 {
					return st
				}
				return C.zenith_job_spec_set_max_runtime(spec, C.uint64_t(j.MaxRuntimeMs), e)
			})
			return err
		},
		func() error {
			if len(j.Command) == 0 {
				return nil
			}
			if err := text(func(s *C.zenith_job_spec, c *C.char, e **C.zenith_error) C.zenith_status {
				return C.zenith_job_spec_set_command(s, c, e)
			}, j.Command[0]); err != nil {
				return err
			}
			for _, a := range j.Command[1:] {
				if err := text(func(s *C.zenith_job_spec, c *C.char, e **C.zenith_error) C.zenith_status {
					return C.zenith_job_spec_add_arg(s, c, e)
				}, a); err != nil {
					return err
				}
			}
			for _, kv := range j.Env {
				k, v := cstr(kv[0]), cstr(kv[1])
				_, err := call(func(e **C.zenith_error) C.zenith_status { return C.zenith_job_spec_add_env(spec, k, v, e) })
				free(k)
				free(v)
				if err != nil {
					return err
				}
			}
			return nil
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			C.zenith_job_spec_free(spec)
			return nil, err
		}
	}
	return spec, nil
}

func boolInt(b bool) C.int32_t {
	if b {
		return 1
	}
	return 0
}

// Validate checks every field of the spec as Submit does (the error names the field).
func (j *JobSpec) Validate() error {
	spec, err := j.build()
	if err != nil {
		return err
	}
	defer C.zenith_job_spec_free(spec)
	_, err = call(func(e **C.zenith_error) C.zenith_status { return C.zenith_job_spec_validate(spec, e) })
	return err
}

// AddNode adds a node at now (its first heartbeat) and returns its id.
func (s *Scheduler) AddNode(n NodeSpec, now uint64) (uint32, error) {
	spec, err := n.build()
	if err != nil {
		return 0, err
	}
	defer C.zenith_node_spec_free(spec)
	var id C.uint32_t
	_, err = s.with(func(h *C.zenith_scheduler, e **C.zenith_error) C.zenith_status {
		return C.zenith_scheduler_node_add(h, spec, C.uint64_t(now), &id, e)
	})
	return uint32(id), err
}

func (s *Scheduler) nodeCall(f func(*C.zenith_scheduler, *C.char, C.uint64_t, **C.zenith_error) C.zenith_status, name string, now uint64) error {
	c := cstr(name)
	defer free(c)
	_, err := s.with(func(h *C.zenith_scheduler, e **C.zenith_error) C.zenith_status { return f(h, c, C.uint64_t(now), e) })
	return err
}

// RemoveNode removes a node; the next pass requeues (or fails) its jobs.
func (s *Scheduler) RemoveNode(name string, now uint64) error {
	return s.nodeCall(func(h *C.zenith_scheduler, c *C.char, t C.uint64_t, e **C.zenith_error) C.zenith_status {
		return C.zenith_scheduler_node_remove(h, c, t, e)
	}, name, now)
}

// Heartbeat records a node's heartbeat.
func (s *Scheduler) Heartbeat(name string, now uint64) error {
	return s.nodeCall(func(h *C.zenith_scheduler, c *C.char, t C.uint64_t, e **C.zenith_error) C.zenith_status {
		return C.zenith_scheduler_node_heartbeat(h, c, t, e)
	}, name, now)
}

// Drain stops a node from taking new work (running jobs finish).
func (s *Scheduler) Drain(name string, now uint64) error {
	return s.nodeCall(func(h *C.zenith_scheduler, c *C.char, t C.uint64_t, e **C.zenith_error) C.zenith_status {
		return C.zenith_scheduler_node_drain(h, c, t, e)
	}, name, now)
}

// Quantity is an amount of each resource a queue limit counts.
type Quantity struct {
	GPUMilli  uint64
	CPUMilli  uint64
	MemoryMiB uint64
}

// QueueSpec describes a queue with a quota (Kueue's ClusterQueue): Nominal (nil: no quota),
// BorrowingLimit and LendingLimit (nil: none / all of Nominal), Cohort, Weight (default 1).
type QueueSpec struct {
	Name           string
	Nominal        *Quantity
	BorrowingLimit *Quantity
	LendingLimit   *Quantity
	Cohort         string
	Weight         uint32
}

// SetQueue adds or replaces a queue and its quota.
func (s *Scheduler) SetQueue(q QueueSpec) error {
	var spec *C.zenith_queue_spec
	name := cstr(q.Name)
	defer free(name)
	if _, err := call(func(e **C.zenith_error) C.zenith_status { return C.zenith_queue_spec_new(name, &spec, e) }); err != nil {
		return err
	}
	defer C.zenith_queue_spec_free(spec)
	for _, l := range []struct {
		which C.zenith_queue_limit
		q     *Quantity
	}{{C.ZENITH_QUEUE_NOMINAL, q.Nominal}, {C.ZENITH_QUEUE_BORROWING_LIMIT, q.BorrowingLimit}, {C.ZENITH_QUEUE_LENDING_LIMIT, q.LendingLimit}} {
		if l.q == nil {
			continue
		}
		if _, err := call(func(e **C.zenith_error) C.zenith_status {
			return C.zenith_queue_spec_set_limit(spec, l.which, C.uint64_t(l.q.GPUMilli), C.uint64_t(l.q.CPUMilli), C.uint64_t(l.q.MemoryMiB), e)
		}); err != nil {
			return err
		}
	}
	var cohort *C.char
	if q.Cohort != "" {
		cohort = cstr(q.Cohort)
		defer free(cohort)
	}
	weight := q.Weight
	if weight == 0 {
		weight = 1
	}
	if _, err := call(func(e **C.zenith_error) C.zenith_status {
		return C.zenith_queue_spec_set_cohort(spec, cohort, C.uint32_t(weight), e)
	}); err != nil {
		return err
	}
	_, err := s.with(func(h *C.zenith_scheduler, e **C.zenith_error) C.zenith_status {
		return C.zenith_scheduler_set_queue(h, spec, e)
	})
	return err
}

// Submit submits a job (PENDING; it enters the queue at the next pass).
func (s *Scheduler) Submit(j JobSpec, now uint64) error {
	spec, err := j.build()
	if err != nil {
		return err
	}
	defer C.zenith_job_spec_free(spec)
	_, err = s.with(func(h *C.zenith_scheduler, e **C.zenith_error) C.zenith_status {
		return C.zenith_scheduler_submit(h, spec, C.uint64_t(now), e)
	})
	return err
}

func (s *Scheduler) jobCall(f func(*C.zenith_scheduler, C.uint64_t, C.uint64_t, **C.zenith_error) C.zenith_status, job, now uint64) error {
	_, err := s.with(func(h *C.zenith_scheduler, e **C.zenith_error) C.zenith_status {
		return f(h, C.uint64_t(job), C.uint64_t(now), e)
	})
	return err
}

// Cancel cancels a live job.
func (s *Scheduler) Cancel(job, now uint64) error {
	return s.jobCall(func(h *C.zenith_scheduler, j, t C.uint64_t, e **C.zenith_error) C.zenith_status {
		return C.zenith_scheduler_cancel(h, j, t, e)
	}, job, now)
}

// JobStarted reports that a SCHEDULED job runs.
func (s *Scheduler) JobStarted(job, now uint64) error {
	return s.jobCall(func(h *C.zenith_scheduler, j, t C.uint64_t, e **C.zenith_error) C.zenith_status {
		return C.zenith_scheduler_job_started(h, j, t, e)
	}, job, now)
}

// JobProgress is a running job's progress heartbeat.
func (s *Scheduler) JobProgress(job, now uint64) error {
	return s.jobCall(func(h *C.zenith_scheduler, j, t C.uint64_t, e **C.zenith_error) C.zenith_status {
		return C.zenith_scheduler_job_progress(h, j, t, e)
	}, job, now)
}

// JobCompleted reports that a running job finished successfully.
func (s *Scheduler) JobCompleted(job, now uint64) error {
	return s.jobCall(func(h *C.zenith_scheduler, j, t C.uint64_t, e **C.zenith_error) C.zenith_status {
		return C.zenith_scheduler_job_completed(h, j, t, e)
	}, job, now)
}

// JobFailed reports that a job failed.
func (s *Scheduler) JobFailed(job, now uint64) error {
	return s.jobCall(func(h *C.zenith_scheduler, j, t C.uint64_t, e **C.zenith_error) C.zenith_status {
		return C.zenith_scheduler_job_failed(h, j, t, e)
	}, job, now)
}

func readDecisions(d *C.zenith_scheduler_decisions) ([]Decision, error) {
	defer C.zenith_scheduler_decisions_free(d)
	n := int(C.zenith_scheduler_decisions_len(d))
	out := make([]Decision, 0, n)
	for i := 0; i < n; i++ {
		var info C.zenith_scheduler_decision
		info.struct_size = C.size_t(unsafe.Sizeof(info))
		if _, err := call(func(e **C.zenith_error) C.zenith_status {
			return C.zenith_scheduler_decisions_get(d, C.size_t(i), &info, e)
		}); err != nil {
			return nil, err
		}
		dec := Decision{Kind: DecisionKind(info.kind), Job: uint64(info.job), By: uint64(info.by), Reason: int32(info.reason)}
		for m := 0; m < int(info.members); m++ {
			var mi C.zenith_scheduler_member
			mi.struct_size = C.size_t(unsafe.Sizeof(mi))
			if _, err := call(func(e **C.zenith_error) C.zenith_status {
				return C.zenith_scheduler_decisions_member(d, C.size_t(i), C.size_t(m), &mi, e)
			}); err != nil {
				return nil, err
			}
			member := Member{NodeID: uint32(mi.node_id), Node: C.GoString(mi.node_name)}
			for g := 0; g < int(mi.gpus); g++ {
				var index, milli C.uint32_t
				if _, err := call(func(e **C.zenith_error) C.zenith_status {
					return C.zenith_scheduler_decisions_member_gpu(d, C.size_t(i), C.size_t(m), C.size_t(g), &index, &milli, e)
				}); err != nil {
					return nil, err
				}
				member.GPUs = append(member.GPUs, uint32(index))
				member.GPUMilli = append(member.GPUMilli, uint32(milli))
			}
			dec.Members = append(dec.Members, member)
		}
		out = append(out, dec)
	}
	return out, nil
}

// Schedule runs one scheduling pass at now and returns the decisions, in the order to act on
// them.
func (s *Scheduler) Schedule(now uint64) ([]Decision, error) {
	var d *C.zenith_scheduler_decisions
	if _, err := s.with(func(h *C.zenith_scheduler, e **C.zenith_error) C.zenith_status {
		return C.zenith_scheduler_schedule(h, C.uint64_t(now), &d, e)
	}); err != nil {
		return nil, err
	}
	return readDecisions(d)
}

// JobState returns a job's state.
func (s *Scheduler) JobState(job uint64) (JobState, error) {
	var st C.zenith_job_state
	_, err := s.with(func(h *C.zenith_scheduler, e **C.zenith_error) C.zenith_status {
		return C.zenith_scheduler_job_state(h, C.uint64_t(job), &st, e)
	})
	return JobState(st), err
}

// TestOnly returns a placement the job could get now (TEST_ONLY), and whether there is one.
func (s *Scheduler) TestOnly(j JobSpec) ([]Member, bool, error) {
	spec, err := j.build()
	if err != nil {
		return nil, false, err
	}
	defer C.zenith_job_spec_free(spec)
	var d *C.zenith_scheduler_decisions
	if _, err := s.with(func(h *C.zenith_scheduler, e **C.zenith_error) C.zenith_status {
		return C.zenith_scheduler_test_only(h, spec, &d, e)
	}); err != nil {
		return nil, false, err
	}
	decisions, err := readDecisions(d)
	if err != nil || len(decisions) == 0 {
		return nil, false, err
	}
	return decisions[0].Members, true, nil
}

// WillRun returns the earliest time the job could start (WILL_RUN), and false when it never
// fits on the current nodes.
func (s *Scheduler) WillRun(j JobSpec) (uint64, bool, error) {
	spec, err := j.build()
	if err != nil {
		return 0, false, err
	}
	defer C.zenith_job_spec_free(spec)
	var at C.uint64_t
	st, err := s.with(func(h *C.zenith_scheduler, e **C.zenith_error) C.zenith_status {
		return C.zenith_scheduler_will_run(h, spec, &at, e)
	})
	if err != nil || st == C.ZENITH_DONE {
		return 0, false, err
	}
	return uint64(at), true, nil
}

// SchedulerStats holds a scheduler's counters and gauges.
type SchedulerStats struct {
	Jobs                   [8]uint64 // per JobState
	AllocationSuccessTotal uint64
	PreemptionsTotal       uint64
	RequeuesTotal          uint64
	Passes                 uint64
	GPUs                   uint64
	RestoredRecords        uint64
	NowMs                  uint64
}

// Stats returns the scheduler's counters and gauges.
func (s *Scheduler) Stats() (SchedulerStats, error) {
	var c C.zenith_scheduler_stats
	c.struct_size = C.size_t(unsafe.Sizeof(c))
	_, err := s.with(func(h *C.zenith_scheduler, e **C.zenith_error) C.zenith_status {
		return C.zenith_scheduler_get_stats(h, &c, e)
	})
	out := SchedulerStats{
		AllocationSuccessTotal: uint64(c.allocation_success_total),
		PreemptionsTotal:       uint64(c.preemptions_total),
		RequeuesTotal:          uint64(c.requeues_total),
		Passes:                 uint64(c.passes_total),
		GPUs:                   uint64(c.gpus_total),
		RestoredRecords:        uint64(c.restored_records),
		NowMs:                  uint64(c.now_ms),
	}
	for i := range out.Jobs {
		out.Jobs[i] = uint64(c.jobs[i])
	}
	return out, err
}
