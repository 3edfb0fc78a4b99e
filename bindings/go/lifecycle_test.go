package zenith_test

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	zenith "github.com/zenith-data/libzenith/bindings/go"
	"github.com/zenith-data/libzenith/bindings/go/internal/zenithtest"
)

func TestCloseIdempotentAndUseAfterClose(t *testing.T) {
	l := open(t, "basic.arrow", zenith.Options{BatchSize: 1000})
	b, err := l.Next()
	if err != nil {
		t.Fatal(err)
	}
	arr, schema, err := b.ExportArrow()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := l.Close(); err != nil {
			t.Fatalf("Loader.Close #%d: %v", i, err)
		}
	}
	if _, err := l.Next(); !errors.Is(err, zenith.ErrClosed) {
		t.Errorf("Next after Close: %v", err)
	}
	if err := l.SetEpoch(1); !errors.Is(err, zenith.ErrClosed) {
		t.Errorf("SetEpoch after Close: %v", err)
	}
	if _, err := l.SaveState(); !errors.Is(err, zenith.ErrClosed) {
		t.Errorf("SaveState after Close: %v", err)
	}
	if _, err := l.Stats(); !errors.Is(err, zenith.ErrClosed) {
		t.Errorf("Stats after Close: %v", err)
	}
	if _, err := l.Schema(); !errors.Is(err, zenith.ErrClosed) {
		t.Errorf("Schema after Close: %v", err)
	}
	if _, err := l.ExportStream(); !errors.Is(err, zenith.ErrClosed) {
		t.Errorf("ExportStream after Close: %v", err)
	}
	if n := l.NumBatches(); n != 0 {
		t.Errorf("NumBatches after Close = %d", n)
	}

	// The batch outlives its loader; its export outlives the batch.
	if b.NumRows() != 1000 {
		t.Errorf("batch has %d rows after the loader closed", b.NumRows())
	}
	ids := batchIDs(t, b)
	for i := 0; i < 3; i++ {
		if err := b.Close(); err != nil {
			t.Fatalf("Batch.Close #%d: %v", i, err)
		}
	}
	if b.NumRows() != 0 {
		t.Error("NumRows after Close is not 0")
	}
	if _, _, err := b.ExportArrow(); !errors.Is(err, zenith.ErrClosed) {
		t.Errorf("ExportArrow after Close: %v", err)
	}
	if arr.Len() != len(ids) || arr.Pointer() == nil || schema.Pointer() == nil {
		t.Errorf("export after the batch closed: Len %d, want %d", arr.Len(), len(ids))
	}
	for i := 0; i < 3; i++ {
		arr.Release()
		schema.Release()
	}
	if arr.Pointer() != nil || schema.Pointer() != nil || arr.Len() != 0 {
		t.Error("released wrappers still point somewhere")
	}
}

// Separate loaders on many goroutines at once, each reading whole epochs (run with -race).
func TestConcurrentLoaders(t *testing.T) {
	names := []string{"basic.arrow", "parquet/basic.lz4.parquet", "shards", "basic.arrows"}
	modes := []zenith.Shuffle{zenith.ShuffleNone, zenith.ShuffleGlobal, zenith.ShuffleBlock}
	dir := zenithtest.DataDir(t)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			opts := zenith.Options{
				BatchSize:  300 + 97*g,
				Shuffle:    modes[g%len(modes)],
				Seed:       uint64(g),
				NumWorkers: zenith.IntPtr(g % 3),
			}
			l, err := zenith.Open(filepath.Join(dir, names[g%len(names)]), opts)
			if err != nil {
				errs <- err
				return
			}
			defer l.Close()
			for e := uint64(0); e < 2; e++ {
				if err := l.SetEpoch(e); err != nil {
					errs <- err
					return
				}
				ids, _, err := readEpoch(l)
				if err == nil {
					err = zenithtest.CheckPermutation(ids, rows)
				}
				if err != nil {
					errs <- fmt.Errorf("goroutine %d, epoch %d: %w", g, e, err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// One loader shared by goroutines: each batch goes to exactly one of them, Stats runs
// alongside, and nothing races (run with -race).
func TestSharedLoader(t *testing.T) {
	l := open(t, "basic.arrow", zenith.Options{BatchSize: 100, NumWorkers: zenith.IntPtr(2)})
	var mu sync.Mutex
	var all []int64
	var wg sync.WaitGroup
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			default:
				if _, err := l.Stats(); err != nil {
					t.Error(err)
					return
				}
				_ = l.NumBatches()
				time.Sleep(100 * time.Microsecond)
			}
		}
	}()
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				b, err := l.Next()
				if err == io.EOF {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				ids, err := readIDs(b)
				b.Close()
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				all = append(all, ids...)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(done)
	if err := zenithtest.CheckPermutation(all, rows); err != nil {
		t.Error(err)
	}
}

// Close while other goroutines call Next, export and close batches: every call either works
// or reports ErrClosed; nothing crashes.
func TestCloseWhileInUse(t *testing.T) {
	for round := 0; round < 5; round++ {
		l, err := zenith.Open(zenithtest.Path(t, "basic.arrow"), zenith.Options{BatchSize: 10})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					b, err := l.Next()
					if errors.Is(err, zenith.ErrClosed) || err == io.EOF {
						return
					}
					if err != nil {
						t.Error(err)
						return
					}
					go b.Close() // batches close on their own goroutines
					if _, err := l.Stats(); err != nil && !errors.Is(err, zenith.ErrClosed) {
						t.Error(err)
					}
				}
			}()
		}
		time.Sleep(time.Duration(round) * time.Millisecond)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
	}
}

// Loaders, batches and exports dropped without Close or Release are freed by their
// finalizers: no crash, no double free, and the finalizers do run.
func TestFinalizerBackstop(t *testing.T) {
	loaders0, batches0 := zenith.Finalized()
	path := zenithtest.Path(t, "basic.arrow")
	for i := 0; i < 200; i++ {
		l, err := zenith.Open(path, zenith.Options{BatchSize: 512, NumWorkers: zenith.IntPtr(1)})
		if err != nil {
			t.Fatal(err)
		}
		b, err := l.Next()
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			arr, schema, err := b.ExportArrow() // dropped unreleased
			if err != nil || arr.Len() != 512 || schema.Pointer() == nil {
				t.Fatal(err)
			}
		}
		if i%3 == 0 {
			if _, err := l.Schema(); err != nil {
				t.Fatal(err)
			}
		}
		if i%5 == 0 {
			if _, err := l.ExportStream(); err != nil {
				t.Fatal(err)
			}
		}
		if i%7 == 0 {
			b.Close() // mixed with finalizers
			l.Close()
		}
		if i%50 == 0 {
			runtime.GC()
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		loaders, batches := zenith.Finalized()
		if loaders-loaders0 >= 150 && batches-batches0 >= 150 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("finalizers freed %d loaders and %d batches of 171 each", loaders-loaders0, batches-batches0)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// The library still works.
	ids, _ := epoch(t, open(t, "basic.arrow", zenith.Options{Shuffle: zenith.ShuffleNone}))
	if !slices.IsSorted(ids) || len(ids) != rows {
		t.Error("loader after the finalizer storm")
	}
}
