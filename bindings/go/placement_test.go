package zenith_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	zenith "github.com/zenith-data/libzenith/bindings/go"
	"github.com/zenith-data/libzenith/bindings/go/internal/zenithtest"
)

// The placement and I/O options reach the library, change no rows, and show in Stats.

func TestIOBackendsReadTheSameRows(t *testing.T) {
	t.Setenv("ZENITH_IO_BACKEND", "")
	for _, backend := range []zenith.IOBackend{zenith.IOMmap, zenith.IOPread, zenith.IOUring} {
		t.Run(backend.String(), func(t *testing.T) {
			l := open(t, "parquet/basic.zstd.parquet", zenith.Options{BatchSize: 1000, Shuffle: zenith.ShuffleNone, IOBackend: backend})
			ids, _, err := readEpoch(l)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids, seq(rows)) {
				t.Fatalf("ids differ from dataset order")
			}
			s, err := l.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if s.IOBackendRequested != backend {
				t.Errorf("IOBackendRequested = %v, want %v", s.IOBackendRequested, backend)
			}
			reason, err := l.IOFallbackReason()
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case s.IOBackend == backend:
				if reason != "" {
					t.Errorf("no fallback, but IOFallbackReason = %q", reason)
				}
			case backend == zenith.IOUring && s.IOBackend == zenith.IOPread: // io_uring refused here
				if reason == "" {
					t.Errorf("fell back to pread without a reason")
				}
			default:
				t.Errorf("IOBackend = %v, asked for %v", s.IOBackend, backend)
			}
			if backend != zenith.IOMmap && s.IOReadBytes == 0 {
				t.Errorf("IOReadBytes = 0 with %v", backend)
			}
		})
	}
}

func TestIODirectReadsTheSameRows(t *testing.T) {
	l := open(t, "parquet/basic.zstd.parquet", zenith.Options{BatchSize: 1000, Shuffle: zenith.ShuffleNone, IOBackend: zenith.IOPread, IODirect: true})
	ids, _, err := readEpoch(l)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, seq(rows)) {
		t.Fatalf("ids differ from dataset order")
	}
}

func TestNUMANodePinsTheWorkers(t *testing.T) {
	l := open(t, "basic.arrow", zenith.Options{BatchSize: 1000, NumWorkers: zenith.IntPtr(2), NUMANode: zenith.IntPtr(0)})
	if _, _, err := readEpoch(l); err != nil {
		t.Fatal(err)
	}
	s, err := l.Stats()
	if err != nil {
		t.Fatal(err)
	}
	// Workers pin themselves as they start: after an epoch at least the one that built the
	// batches has.
	if s.NUMANode != 0 || s.PinnedWorkers < 1 || s.PinnedWorkers > 2 {
		t.Errorf("NUMANode %d, PinnedWorkers %d; want 0 and 1..2", s.NUMANode, s.PinnedWorkers)
	}
	unplaced := open(t, "basic.arrow", zenith.Options{NUMANode: zenith.IntPtr(-1)})
	if s, err := unplaced.Stats(); err != nil || s.NUMANode != -1 || s.PinnedWorkers != 0 {
		t.Errorf("NUMANode -1: stats %+v, %v", s, err)
	}
}

func TestBadPlacementOptions(t *testing.T) {
	path := "basic.arrow"
	for name, opts := range map[string]zenith.Options{
		"numa node -2":    {NUMANode: zenith.IntPtr(-2)},
		"two placements":  {NUMANode: zenith.IntPtr(0), NearGPUIndex: zenith.IntPtr(0)},
		"no such GPU":     {NearGPUIndex: zenith.IntPtr(4096)},
		"bad PCI address": {NearGPUPCI: "not a pci address"},
		"negative GPU":    {NearGPUIndex: zenith.IntPtr(-1)},
		"unknown backend": {IOBackend: zenith.IOBackend(9)},
	} {
		t.Run(name, func(t *testing.T) {
			l, err := zenith.Open(zenithtest.Path(t, path), opts)
			if err == nil {
				l.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, zenith.ErrInvalidArgument) {
				t.Fatalf("err = %v, want ErrInvalidArgument", err)
			}
			if name == "no such GPU" && !strings.Contains(err.Error(), "GPU") {
				t.Errorf("err = %v does not name the GPU", err)
			}
		})
	}
}

func seq(n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(i)
	}
	return out
}

// Device reaches the library: without a CUDA device Open fails with ErrNoDevice and says why;
// bad values are ErrInvalidArgument before anything is opened.
func TestDeviceOption(t *testing.T) {
	path := zenithtest.Path(t, "basic.arrow")
	l, err := zenith.Open(path, zenith.Options{BatchSize: 10, Device: "cuda:0"})
	if err == nil {
		t.Log("a CUDA device is present: the device path opened")
		l.Close()
	} else {
		if !errors.Is(err, zenith.ErrNoDevice) {
			t.Fatalf("want ErrNoDevice, got %v", err)
		}
		if !strings.Contains(err.Error(), "deliver batches to CUDA device 0, which is not available") {
			t.Fatalf("the message says what was asked: %v", err)
		}
	}
	for _, opts := range []zenith.Options{
		{Device: "gpu0"},
		{Device: "cuda:x"},
		{Device: "cpu", DeviceSlots: 4},
		{Device: "cuda:0", DeviceSlots: 2},
	} {
		if _, err := zenith.Open(path, opts); !errors.Is(err, zenith.ErrInvalidArgument) {
			t.Errorf("%+v: want ErrInvalidArgument, got %v", opts, err)
		}
	}
}

// PinMemory reaches the library: without a CUDA device Open fails with ErrNoDevice naming the
// option; with one, the batches are those of a loader without it.
func TestPinMemoryOption(t *testing.T) {
	path := zenithtest.Path(t, "basic.arrow")
	l, err := zenith.Open(path, zenith.Options{BatchSize: 10, PinMemory: "cuda"})
	if err == nil {
		t.Log("a CUDA device is present: batches land in pinned memory")
		l.Close()
	} else {
		if !errors.Is(err, zenith.ErrNoDevice) {
			t.Fatalf("want ErrNoDevice, got %v", err)
		}
		if !strings.Contains(err.Error(), "pin_memory needs CUDA device 0, which is not available") {
			t.Fatalf("the message says what was asked: %v", err)
		}
	}
	if _, err := zenith.Open(path, zenith.Options{PinMemory: "gpu0"}); !errors.Is(err, zenith.ErrInvalidArgument) {
		t.Errorf("want ErrInvalidArgument, got %v", err)
	}
}
