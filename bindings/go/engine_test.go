package zenith_test

import (
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/cdata"
	"github.com/apache/arrow-go/v18/arrow/memory/mallocator"

	zenith "github.com/zenith-data/libzenith/bindings/go"
	"github.com/zenith-data/libzenith/bindings/go/internal/zenithtest"
)

// Batches are built in C memory (mallocator): the engine keeps them after Publish returns.
var engineAlloc = mallocator.NewMallocator()

var xSchema = arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Float64}}, nil)

// exportBatch builds a one-column ("x") record batch and exports it for Publish.
func exportBatch(t *testing.T, values ...float64) (*zenith.ArrowArray, *zenith.ArrowSchema) {
	t.Helper()
	b := array.NewRecordBuilder(engineAlloc, xSchema)
	defer b.Release()
	b.Field(0).(*array.Float64Builder).AppendValues(values, nil)
	rec := b.NewRecordBatch()
	defer rec.Release()
	a, s := zenith.NewArrowArray(), zenith.NewArrowSchema()
	cdata.ExportArrowRecordBatch(rec, (*cdata.CArrowArray)(a.Pointer()), (*cdata.CArrowSchema)(s.Pointer()))
	return a, s
}

func publish(t *testing.T, g *zenith.Engine, values ...float64) uint64 {
	t.Helper()
	a, s := exportBatch(t, values...)
	defer a.Release()
	defer s.Release()
	seq, err := g.Publish(a, s, zenith.Forever)
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	return seq
}

// valuesOf imports an array/schema pair and returns column "x" (the structs are released).
func valuesOf(t *testing.T, a *zenith.ArrowArray, s *zenith.ArrowSchema) []float64 {
	t.Helper()
	defer a.Release()
	defer s.Release()
	rec, err := cdata.ImportCRecordBatch((*cdata.CArrowArray)(a.Pointer()), (*cdata.CArrowSchema)(s.Pointer()))
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	defer rec.Release()
	col := rec.Column(0).(*array.Float64)
	return append([]float64(nil), col.Float64Values()...)
}

func pollValues(t *testing.T, g *zenith.Engine) (uint64, []float64) {
	t.Helper()
	ev, err := g.Poll(zenith.Forever)
	if err != nil {
		t.Fatalf("Poll: %v", err)
	}
	return ev.Sequence, valuesOf(t, ev.Array, ev.Schema)
}

// doubling is a Go stage: x -> 2x; events whose first value is negative fail.
func doubling(t *testing.T) *zenith.Stage {
	stage, err := zenith.NewGoStage("double", func(in *zenith.ArrowArray, inS *zenith.ArrowSchema) (*zenith.ArrowArray, *zenith.ArrowSchema, error) {
		rec, err := cdata.ImportCRecordBatch((*cdata.CArrowArray)(in.Pointer()), (*cdata.CArrowSchema)(inS.Pointer()))
		if err != nil {
			return nil, nil, err
		}
		defer rec.Release()
		x := rec.Column(0).(*array.Float64).Float64Values()
		if len(x) > 0 && x[0] < 0 {
			return nil, nil, errors.New("negative first value")
		}
		out := make([]float64, len(x))
		for i, v := range x {
			out[i] = 2 * v
		}
		b := array.NewRecordBuilder(engineAlloc, xSchema)
		defer b.Release()
		b.Field(0).(*array.Float64Builder).AppendValues(out, nil)
		res := b.NewRecordBatch()
		defer res.Release()
		a, s := zenith.NewArrowArray(), zenith.NewArrowSchema()
		cdata.ExportArrowRecordBatch(res, (*cdata.CArrowArray)(a.Pointer()), (*cdata.CArrowSchema)(s.Pointer()))
		return a, s, nil
	})
	if err != nil {
		t.Fatalf("NewGoStage: %v", err)
	}
	t.Cleanup(func() { stage.Close() })
	return stage
}

func pluginPath(name string) string {
	dir := os.Getenv("ZENITH_TEST_PLUGINS")
	if dir == "" {
		dir = filepath.Join("..", "..", "build", "plugins")
	}
	return filepath.Join(dir, name)
}

func TestEngineGoStageKeepsOrderAcrossPublishers(t *testing.T) {
	g, err := zenith.NewEngine(zenith.EngineOptions{Capacity: 8, Workers: 3, Stages: []*zenith.Stage{doubling(t)}})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	const publishers, each = 3, 50
	var wg sync.WaitGroup
	for p := 0; p < publishers; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				a, s := exportBatch(t, float64(p*1000+i), 1)
				if _, err := g.Publish(a, s, zenith.Forever); err != nil {
					t.Errorf("Publish: %v", err)
				}
				a.Release()
				s.Release()
			}
		}(p)
	}
	last := []int{-1, -1, -1}
	for n := 0; n < publishers*each; n++ {
		seq, x := pollValues(t, g)
		if seq != uint64(n) {
			t.Fatalf("event %d has sequence %d", n, seq)
		}
		if len(x) != 2 || x[1] != 2 {
			t.Fatalf("event %d: %v", n, x)
		}
		p, i := int(x[0]/2000), int(x[0]/2)%1000
		if i != last[p]+1 {
			t.Fatalf("publisher %d: %d after %d", p, i, last[p])
		}
		last[p] = i
	}
	wg.Wait()
	if _, err := g.Poll(0); !errors.Is(err, zenith.ErrTimeout) {
		t.Fatalf("Poll on an empty engine: %v", err)
	}
}

func TestEngineNormalizePlugin(t *testing.T) {
	stage, err := zenith.NewWasmStage(pluginPath("normalize.wasm"), 64<<20, time.Second)
	if err != nil {
		t.Fatalf("NewWasmStage (run `make plugins`): %v", err)
	}
	defer stage.Close()
	g, err := zenith.NewEngine(zenith.EngineOptions{Stages: []*zenith.Stage{stage}})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	x := []float64{1, 2, 3, 4, 10}
	publish(t, g, x...)
	_, got := pollValues(t, g)
	mean, sq := 4.0, 0.0
	for _, v := range x {
		sq += (v - mean) * (v - mean)
	}
	sd := math.Sqrt(sq / 5)
	for i := range x {
		if math.Abs(got[i]-(x[i]-mean)/sd) > 1e-12 {
			t.Fatalf("normalize: got %v", got)
		}
	}
}

func TestEngineFailedEventInItsPlace(t *testing.T) {
	g, err := zenith.NewEngine(zenith.EngineOptions{Stages: []*zenith.Stage{doubling(t)}})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	publish(t, g, 1)
	publish(t, g, -1)
	publish(t, g, 3)
	if _, x := pollValues(t, g); x[0] != 2 {
		t.Fatalf("first event: %v", x)
	}
	_, err = g.Poll(zenith.Forever)
	var failed *zenith.EventFailedError
	if !errors.As(err, &failed) || failed.Sequence != 1 || !errors.Is(err, zenith.ErrEventFailed) {
		t.Fatalf("second event: %v", err)
	}
	if _, x := pollValues(t, g); x[0] != 6 {
		t.Fatalf("third event: %v", x)
	}
}

func TestEngineBackPressureGivesTheBatchBack(t *testing.T) {
	g, err := zenith.NewEngine(zenith.EngineOptions{Capacity: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	publish(t, g, 1)
	a, s := exportBatch(t, 2, 3)
	if _, err := g.Publish(a, s, 10*time.Millisecond); !errors.Is(err, zenith.ErrTimeout) {
		t.Fatalf("Publish on a full engine: %v", err)
	}
	if a.Len() != 2 {
		t.Fatalf("the refused batch was not given back whole (len %d)", a.Len())
	}
	pollValues(t, g)
	if seq, err := g.Publish(a, s, time.Second); err != nil || seq != 1 {
		t.Fatalf("retry: %d %v", seq, err)
	}
	a.Release()
	s.Release()
	if _, x := pollValues(t, g); len(x) != 2 || x[0] != 2 {
		t.Fatalf("retried event: %v", x)
	}
}

func TestEngineCloseReleasesEventsInFlight(t *testing.T) {
	g, err := zenith.NewEngine(zenith.EngineOptions{Capacity: 16, Stages: []*zenith.Stage{doubling(t)}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		publish(t, g, float64(i))
	}
	pollValues(t, g)
	g.Close()
	g.Close() // idempotent
	if g.Released() != 4 {
		t.Fatalf("released %d, want 4", g.Released())
	}
	if _, err := g.Poll(0); !errors.Is(err, zenith.ErrEngineClosed) {
		t.Fatalf("Poll after Close: %v", err)
	}
	runtime.GC()
}

func TestEngineCloseWakesAWaitingPoll(t *testing.T) {
	for _, timeout := range []time.Duration{zenith.Forever, 10 * time.Minute} {
		g, err := zenith.NewEngine(zenith.EngineOptions{})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error)
		go func() {
			_, err := g.Poll(timeout)
			done <- err
		}()
		time.Sleep(20 * time.Millisecond) // let it start waiting (either order is correct)
		g.Close()
		if err := <-done; !errors.Is(err, zenith.ErrEngineClosed) {
			t.Fatalf("Poll(%v) during Close: %v", timeout, err)
		}
	}
}

func TestEngineErrors(t *testing.T) {
	if _, err := zenith.NewWasmStage(pluginPath("missing.wasm"), 0, 0); !errors.Is(err, zenith.ErrNotFound) {
		t.Fatalf("missing plugin: %v", err)
	}
	if _, err := zenith.NewEngine(zenith.EngineOptions{Workers: 5000}); !errors.Is(err, zenith.ErrInvalidArgument) {
		t.Fatalf("5000 workers: %v", err)
	}
	closed, _ := zenith.NewWasmStage(pluginPath("normalize.wasm"), 0, 0)
	closed.Close()
	if _, err := zenith.NewEngine(zenith.EngineOptions{Stages: []*zenith.Stage{closed}}); !errors.Is(err, zenith.ErrEngineClosed) {
		t.Fatalf("closed stage: %v", err)
	}
}

// A Go stage as a loader stage: run on the loader's workers before delivery, in order.
func TestLoaderStageDoublesEveryBatchInOrder(t *testing.T) {
	l := open(t, "basic.arrow", zenith.Options{
		BatchSize: 1000, Shuffle: zenith.ShuffleNone, NumWorkers: zenith.IntPtr(3), ShardNone: true,
		Columns: []string{"value"}, Stages: []*zenith.Stage{doubling(t)},
	})
	next := 0.0
	for {
		b, err := l.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		a, s, err := b.ExportArrow()
		if err != nil {
			t.Fatal(err)
		}
		b.Close()
		// value = row / 2, doubled by the stage: the row ids, in dataset order.
		for _, x := range valuesOf(t, a, s) {
			if x != next {
				t.Fatalf("got %v, want %v", x, next)
			}
			next++
		}
	}
	if next != rows {
		t.Fatalf("%v rows, want %d", next, rows)
	}
	if _, err := zenith.Open(zenithtest.Path(t, "basic.arrow"), zenith.Options{Stages: []*zenith.Stage{nil}}); err == nil {
		t.Fatal("a nil stage was accepted")
	}
}

// Configuration bytes reach the plugin: normalize with a fixed mean 2 and std 4.
func TestWasmStageConfig(t *testing.T) {
	config := make([]byte, 16)
	binary.LittleEndian.PutUint64(config[0:], math.Float64bits(2))
	binary.LittleEndian.PutUint64(config[8:], math.Float64bits(4))
	stage, err := zenith.NewWasmStageConfig(pluginPath("normalize.wasm"), 0, time.Second, config)
	if err != nil {
		t.Fatalf("NewWasmStageConfig (run `make plugins`): %v", err)
	}
	defer stage.Close()
	g, err := zenith.NewEngine(zenith.EngineOptions{Stages: []*zenith.Stage{stage}})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	publish(t, g, 2, 6, 10)
	if _, got := pollValues(t, g); got[0] != 0 || got[1] != 1 || got[2] != 2 {
		t.Fatalf("normalize with mean 2, std 4: %v", got)
	}
	if _, err := zenith.NewWasmStageConfig(pluginPath("normalize.wasm"), 0, 0, []byte{1}); !errors.Is(err, zenith.ErrInvalidArgument) {
		t.Fatalf("a 1-byte configuration: %v", err)
	}
}

// Pinned workers: pinned to CPU 0 the engine works (a worker the cpuset does not let pin runs
// unpinned); a NUMA node the machine lacks is refused.
func TestEnginePinning(t *testing.T) {
	g, err := zenith.NewEngine(zenith.EngineOptions{Workers: 2, CPUs: []uint32{0}, Stages: []*zenith.Stage{doubling(t)}})
	if err != nil {
		t.Fatalf("NewEngine pinned to CPU 0: %v", err)
	}
	defer g.Close()
	publish(t, g, 21)
	if _, x := pollValues(t, g); x[0] != 42 {
		t.Fatalf("pinned engine: %v", x)
	}
	if _, err := zenith.NewEngine(zenith.EngineOptions{NUMANode: zenith.IntPtr(999)}); !errors.Is(err, zenith.ErrInvalidArgument) {
		t.Fatalf("NUMA node 999: %v", err)
	}
}
