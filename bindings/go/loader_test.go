package zenith_test

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"testing"

	zenith "github.com/zenith-data/libzenith/bindings/go"
	"github.com/zenith-data/libzenith/bindings/go/internal/zenithtest"
	"github.com/zenith-data/libzenith/bindings/go/zenitharrow"
)

const rows = zenithtest.Rows

func open(t testing.TB, name string, opts zenith.Options) *zenith.Loader {
	t.Helper()
	l, err := zenith.Open(zenithtest.Path(t, name), opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", name, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// readIDs checks every value of b and returns its ids (safe on any goroutine).
func readIDs(b *zenith.Batch) ([]int64, error) {
	rec, err := zenitharrow.Record(b)
	if err != nil {
		return nil, fmt.Errorf("Record: %w", err)
	}
	defer rec.Release()
	if int(rec.NumRows()) != b.NumRows() {
		return nil, fmt.Errorf("record has %d rows, batch %d", rec.NumRows(), b.NumRows())
	}
	return zenithtest.CheckRecord(rec)
}

// readEpoch reads batches until io.EOF, checks every value, and returns the ids and batch
// sizes (safe on any goroutine).
func readEpoch(l *zenith.Loader) (ids []int64, sizes []int, err error) {
	for {
		b, err := l.Next()
		if err == io.EOF {
			return ids, sizes, nil
		}
		if err != nil {
			return nil, nil, fmt.Errorf("Next after %d batches: %w", len(sizes), err)
		}
		batch, err := readIDs(b)
		if err != nil {
			return nil, nil, err
		}
		ids = append(ids, batch...)
		sizes = append(sizes, b.NumRows())
		if err := b.Close(); err != nil {
			return nil, nil, err
		}
	}
}

func batchIDs(t testing.TB, b *zenith.Batch) []int64 {
	t.Helper()
	ids, err := readIDs(b)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func epoch(t testing.TB, l *zenith.Loader) (ids []int64, sizes []int) {
	t.Helper()
	ids, sizes, err := readEpoch(l)
	if err != nil {
		t.Fatal(err)
	}
	return ids, sizes
}

func TestVersion(t *testing.T) {
	if !regexp.MustCompile(`^\d+\.\d+\.\d+`).MatchString(zenith.Version()) {
		t.Errorf("Version() = %q", zenith.Version())
	}
	if zenith.VersionNumber() != zenith.HeaderVersionNumber {
		t.Errorf("library %d, header %d", zenith.VersionNumber(), zenith.HeaderVersionNumber)
	}
}

// Shuffle none: every row of every format in dataset order, exact batch sizes.
func TestEpochInOrder(t *testing.T) {
	for _, name := range []string{
		"basic.arrow", "basic.arrows", "single_batch.arrow", "parquet/basic.zstd.parquet",
		"parquet/basic.none.parquet", "shards", "basic.csv",
	} {
		t.Run(name, func(t *testing.T) {
			l := open(t, name, zenith.Options{BatchSize: 1024, Shuffle: zenith.ShuffleNone})
			if got := l.NumBatches(); got != 10 {
				t.Errorf("NumBatches = %d, want 10", got)
			}
			ids, sizes := epoch(t, l)
			want := make([]int64, rows)
			for i := range want {
				want[i] = int64(i)
			}
			if !slices.Equal(ids, want) {
				t.Fatalf("ids are not 0..%d in order", rows-1)
			}
			wantSizes := []int{1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 784}
			if !slices.Equal(sizes, wantSizes) {
				t.Errorf("batch sizes %v, want %v", sizes, wantSizes)
			}
			// The end of an epoch stays the end.
			if b, err := l.Next(); err != io.EOF || b != nil {
				t.Errorf("Next after the end = %v, %v; want nil, io.EOF", b, err)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	l := open(t, "basic.arrow", zenith.Options{})
	st, err := l.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.ShuffleMode != zenith.ShuffleGlobal || st.BatchesPerEpoch != 10 || st.NumWorkers < 1 {
		t.Errorf("defaults: %+v", st)
	}
	ids, sizes := epoch(t, l)
	if err := zenithtest.CheckPermutation(ids, rows); err != nil {
		t.Error(err)
	}
	if sizes[0] != zenith.DefaultBatchSize {
		t.Errorf("first batch %d rows, want %d", sizes[0], zenith.DefaultBatchSize)
	}
}

// Global shuffle: each epoch an exact permutation, a different one per epoch, the same for any
// number of workers and every run.
func TestEpochsGlobalShuffle(t *testing.T) {
	opts := zenith.Options{BatchSize: 1000, Shuffle: zenith.ShuffleGlobal, Seed: 42}
	l := open(t, "basic.arrow", opts)
	first, _ := epoch(t, l)
	if err := zenithtest.CheckPermutation(first, rows); err != nil {
		t.Fatal(err)
	}
	if slices.IsSorted(first) {
		t.Fatal("global shuffle delivered rows in order")
	}
	if err := l.SetEpoch(1); err != nil {
		t.Fatal(err)
	}
	second, _ := epoch(t, l)
	if err := zenithtest.CheckPermutation(second, rows); err != nil {
		t.Fatal(err)
	}
	if slices.Equal(first, second) {
		t.Error("epochs 0 and 1 have the same order")
	}
	if err := l.SetEpoch(0); err != nil {
		t.Fatal(err)
	}
	again, _ := epoch(t, l)
	if !slices.Equal(first, again) {
		t.Error("epoch 0 read twice differs")
	}

	for _, workers := range []int{0, 1, 3} {
		opts.NumWorkers = zenith.IntPtr(workers)
		other, _ := epoch(t, open(t, "basic.arrow", opts))
		if !slices.Equal(first, other) {
			t.Errorf("%d workers give another order", workers)
		}
	}
	opts.Seed = 43
	if other, _ := epoch(t, open(t, "basic.arrow", opts)); slices.Equal(first, other) {
		t.Error("seeds 42 and 43 give the same order")
	}
}

func TestBlockShuffleAndStats(t *testing.T) {
	l := open(t, "parquet/basic.snappy.parquet", zenith.Options{
		BatchSize: 500, Shuffle: zenith.ShuffleBlock, NumWorkers: zenith.IntPtr(2), Prefetch: 3,
	})
	ids, _ := epoch(t, l)
	if err := zenithtest.CheckPermutation(ids, rows); err != nil {
		t.Fatal(err)
	}
	st, err := l.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Rows != rows || st.Batches != 20 || st.BatchesPerEpoch != 20 || st.Epoch != 0 ||
		st.ShuffleMode != zenith.ShuffleBlock || st.NumWorkers != 2 || st.Bytes == 0 ||
		st.TimeToFirstBatch <= 0 || st.ChunksDecoded != 10 {
		t.Errorf("stats after one epoch: %+v", st)
	}
}

func TestShardsAndDropLast(t *testing.T) {
	const world = 3
	var all []int64
	for rank := 0; rank < world; rank++ {
		l := open(t, "basic.arrow", zenith.Options{BatchSize: 1000, Rank: rank, WorldSize: world, Seed: 5, ShardDropRemainder: true})
		ids, sizes := epoch(t, l)
		if len(ids) != rows/world || len(sizes) != l.NumBatches() {
			t.Errorf("rank %d: %d rows in %d batches (NumBatches %d), want %d rows",
				rank, len(ids), len(sizes), l.NumBatches(), rows/world)
		}
		all = append(all, ids...)
	}
	slices.Sort(all)
	if len(slices.Compact(all)) != world*(rows/world) {
		t.Error("ranks share rows")
	}

	l := open(t, "basic.arrow", zenith.Options{BatchSize: 1024, DropLast: true})
	_, sizes := epoch(t, l)
	if len(sizes) != 9 || l.NumBatches() != 9 || slices.Contains(sizes, 784) {
		t.Errorf("drop_last: sizes %v, NumBatches %d", sizes, l.NumBatches())
	}
}

func TestPaddedShardsAndShardStats(t *testing.T) {
	const world = 3
	var all []int64
	for rank := 0; rank < world; rank++ {
		l := open(t, "basic.arrow", zenith.Options{BatchSize: 1000, Rank: rank, WorldSize: world, Seed: 5})
		ids, sizes := epoch(t, l)
		if len(ids) != (rows+world-1)/world || len(sizes) != l.NumBatches() {
			t.Errorf("rank %d: %d rows in %d batches (NumBatches %d)", rank, len(ids), len(sizes), l.NumBatches())
		}
		st, err := l.Stats()
		if err != nil || st.Rank != rank || st.WorldSize != world || st.ShardSource != zenith.ShardFromOptions {
			t.Errorf("rank %d stats: %+v, %v", rank, st, err)
		}
		all = append(all, ids...)
	}
	slices.Sort(all)
	if len(slices.Compact(all)) != rows {
		t.Error("padded ranks do not cover every row")
	}

	l := open(t, "basic.arrow", zenith.Options{ShardNone: true})
	st, err := l.Stats()
	if err != nil || st.WorldSize != 1 || st.ShardSource != zenith.ShardFromOptions || st.ShuffleRequested != zenith.ShuffleAuto {
		t.Errorf("ShardNone stats: %+v, %v", st, err)
	}
	l = open(t, "parquet/basic.snappy.parquet", zenith.Options{MemoryBudget: 200000})
	if st, err := l.Stats(); err != nil || st.ShuffleMode != zenith.ShuffleBlock || st.ShuffleRequested != zenith.ShuffleAuto ||
		st.MemoryBudget != 200000 || st.DecodedBytes <= 200000 {
		t.Errorf("automatic shuffle over budget: %+v, %v", st, err)
	}
}

func TestColumns(t *testing.T) {
	l := open(t, "basic.arrow", zenith.Options{Columns: []string{"name", "id"}, Shuffle: zenith.ShuffleNone})
	schema, err := zenitharrow.Schema(l)
	if err != nil {
		t.Fatal(err)
	}
	if got := schema.String(); !strings.Contains(got, "name: type=utf8") ||
		len(schema.Fields()) != 2 || schema.Field(0).Name != "name" || schema.Field(1).Name != "id" {
		t.Errorf("schema with columns [name id]: %s", got)
	}
	ids, _ := epoch(t, l) // checks names against ids
	if len(ids) != rows {
		t.Errorf("%d rows", len(ids))
	}
}

// Resuming from a token delivers exactly the batches not yet delivered, with other workers.
func TestResume(t *testing.T) {
	opts := zenith.Options{BatchSize: 700, Seed: 9, NumWorkers: zenith.IntPtr(2)}
	full := open(t, "basic.arrow", opts)
	if err := full.SetEpoch(1); err != nil {
		t.Fatal(err)
	}
	want, _ := epoch(t, full)

	l := open(t, "basic.arrow", opts)
	if err := l.SetEpoch(1); err != nil {
		t.Fatal(err)
	}
	var got []int64
	for i := 0; i < 4; i++ {
		b, err := l.Next()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, batchIDs(t, b)...)
		b.Close()
	}
	token, err := l.SaveState()
	if err != nil {
		t.Fatal(err)
	}
	if len(token) == 0 || len(token) > zenith.ResumeStateSize {
		t.Fatalf("token of %d bytes", len(token))
	}
	l.Close()

	opts.ResumeState = token
	opts.NumWorkers = zenith.IntPtr(0)
	resumed := open(t, "basic.arrow", opts)
	if st, _ := resumed.Stats(); st.Epoch != 1 {
		t.Errorf("resumed at epoch %d, want 1", st.Epoch)
	}
	rest, _ := epoch(t, resumed)
	if got = append(got, rest...); !slices.Equal(got, want) {
		t.Errorf("resumed epoch differs: %d rows, want %d", len(got), len(want))
	}

	// A token for other options is refused.
	opts.Seed = 10
	if _, err := zenith.Open(zenithtest.Path(t, "basic.arrow"), opts); !errors.Is(err, zenith.ErrInvalidArgument) {
		t.Errorf("token with another seed: %v, want ErrInvalidArgument", err)
	}
}

func TestErrors(t *testing.T) {
	dir := zenithtest.DataDir(t)
	cases := []struct {
		name string
		path string
		opts zenith.Options
		code zenith.Status
		msg  string // part of the message
	}{
		{"missing file", dir + "/does-not-exist.arrow", zenith.Options{}, zenith.ErrNotFound, "does-not-exist.arrow"},
		{"empty dir", dir + "/empty_dir", zenith.Options{}, zenith.ErrNotFound, "no data files"},
		{"truncated", dir + "/truncated.arrow", zenith.Options{}, zenith.ErrFormat, "truncated.arrow"},
		{"corrupt footer", dir + "/corrupt_footer.arrow", zenith.Options{}, zenith.ErrFormat, "corrupt_footer.arrow"},
		{"not a dataset", dir + "/not_a_dataset.bin", zenith.Options{}, zenith.ErrFormat, "not_a_dataset.bin"},
		{"truncated parquet", dir + "/truncated.parquet", zenith.Options{}, zenith.ErrFormat, "truncated.parquet"},
		{"malformed csv", dir + "/malformed.csv", zenith.Options{}, zenith.ErrFormat, "line 5"},
		{"mixed shards", dir + "/mixed_shards", zenith.Options{}, zenith.ErrSchemaMismatch, "part-1.parquet"},
		{"negative batch size", dir + "/basic.arrow", zenith.Options{BatchSize: -1}, zenith.ErrInvalidArgument, "batch size"},
		{"negative prefetch", dir + "/basic.arrow", zenith.Options{Prefetch: -2}, zenith.ErrInvalidArgument, "prefetch"},
		{"too many workers", dir + "/basic.arrow", zenith.Options{NumWorkers: zenith.IntPtr(1000)}, zenith.ErrInvalidArgument, ""},
		{"rank beyond world", dir + "/basic.arrow", zenith.Options{Rank: 2, WorldSize: 2}, zenith.ErrInvalidArgument, ""},
		{"rank without world", dir + "/basic.arrow", zenith.Options{Rank: 1}, zenith.ErrInvalidArgument, ""},
		{"unknown column", dir + "/basic.arrow", zenith.Options{Columns: []string{"id", "nope"}}, zenith.ErrInvalidArgument, "nope"},
		{"repeated column", dir + "/basic.arrow", zenith.Options{Columns: []string{"id", "id"}}, zenith.ErrInvalidArgument, ""},
		{"bad shuffle", dir + "/basic.arrow", zenith.Options{Shuffle: 7}, zenith.ErrInvalidArgument, "shuffle"},
		{"garbage token", dir + "/basic.arrow", zenith.Options{ResumeState: []byte("not a token")}, zenith.ErrInvalidArgument, ""},
		{"NUL in path", dir + "/basic.arrow\x00x", zenith.Options{}, zenith.ErrInvalidArgument, "NUL"},
		{"empty columns", dir + "/basic.arrow", zenith.Options{Columns: []string{}}, zenith.ErrInvalidArgument, "columns must not be empty"},
		{"world larger than the data", dir + "/basic.arrow", zenith.Options{Rank: 0, WorldSize: 10001}, zenith.ErrInvalidArgument, "larger than the dataset"},
		{"shard none with a rank", dir + "/basic.arrow", zenith.Options{ShardNone: true, Rank: 1, WorldSize: 2}, zenith.ErrInvalidArgument, "ShardNone"},
		{"global over budget", dir + "/parquet/basic.snappy.parquet", zenith.Options{Shuffle: zenith.ShuffleGlobal, MemoryBudget: 200000}, zenith.ErrOutOfMemory, "memory budget (200000 bytes)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, err := zenith.Open(c.path, c.opts)
			if err == nil {
				l.Close()
				t.Fatal("Open succeeded")
			}
			if l != nil {
				t.Error("Open returned a loader with its error")
			}
			var zerr *zenith.Error
			if !errors.As(err, &zerr) {
				t.Fatalf("%T %v is not a *zenith.Error", err, err)
			}
			if zerr.Code != c.code || !errors.Is(err, c.code) {
				t.Errorf("code %d (%v), want %d (%v): %v", zerr.Code, zerr.Code, c.code, c.code, err)
			}
			if zerr.Message == "" || !strings.Contains(zerr.Message, c.msg) || !strings.HasPrefix(err.Error(), "zenith: ") {
				t.Errorf("message %q (Error() %q), want it to name %q", zerr.Message, err.Error(), c.msg)
			}
			for _, other := range []zenith.Status{zenith.ErrNotFound, zenith.ErrFormat, zenith.ErrInvalidArgument} {
				if other != c.code && errors.Is(err, other) {
					t.Errorf("errors.Is(err, %v) is true for %v", other, c.code)
				}
			}
			if got := errors.Is(err, fs.ErrNotExist); got != (c.code == zenith.ErrNotFound) {
				t.Errorf("errors.Is(err, fs.ErrNotExist) = %v", got)
			}
		})
	}
}

// Data decoded on demand fails in Next, which does not consume the batch: retrying fails again.
func TestCorruptRowGroup(t *testing.T) {
	l := open(t, "corrupt.parquet", zenith.Options{Shuffle: zenith.ShuffleNone, BatchSize: 100})
	for i := 0; i < 2; i++ {
		b, err := l.Next()
		if !errors.Is(err, zenith.ErrFormat) || b != nil {
			t.Fatalf("Next #%d on a corrupt row group: %v, %v; want ErrFormat", i, b, err)
		}
		if !strings.Contains(err.Error(), "corrupt.parquet") {
			t.Errorf("message does not name the file: %v", err)
		}
	}
	if err := l.SetEpoch(1); err != nil { // the loader is still usable
		t.Fatal(err)
	}
}

func TestStatusStrings(t *testing.T) {
	if got := zenith.ErrNotFound.String(); got == "" || got == "unknown status code" {
		t.Errorf("ErrNotFound.String() = %q", got)
	}
	if got := zenith.ErrFormat.Error(); !strings.HasPrefix(got, "zenith: ") {
		t.Errorf("ErrFormat.Error() = %q", got)
	}
	if zenith.ShuffleBlock.String() != "block" || zenith.Shuffle(9).String() != "Shuffle(9)" {
		t.Error("Shuffle.String")
	}
}
