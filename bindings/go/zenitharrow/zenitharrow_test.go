package zenitharrow_test

import (
	"errors"
	"io"
	"runtime"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	zenith "github.com/zenith-data/libzenith/bindings/go"
	"github.com/zenith-data/libzenith/bindings/go/internal/zenithtest"
	"github.com/zenith-data/libzenith/bindings/go/zenitharrow"
)

func open(t *testing.T, name string, opts zenith.Options) *zenith.Loader {
	t.Helper()
	l, err := zenith.Open(zenithtest.Path(t, name), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestSchema(t *testing.T) {
	l := open(t, "basic.arrow", zenith.Options{})
	s, err := zenitharrow.Schema(l)
	if err != nil {
		t.Fatal(err)
	}
	want := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "label", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "value", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "flag", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "embedding", Type: arrow.FixedSizeListOf(4, arrow.PrimitiveTypes.Float32), Nullable: true},
	}, nil)
	if !s.Equal(want) {
		t.Errorf("schema\n%v\nwant\n%v", s, want)
	}
}

// Records from Record and Next hold the expected values, in order, and outlive the batch and
// the loader.
func TestRecords(t *testing.T) {
	l := open(t, "basic.arrow", zenith.Options{BatchSize: 1500, Shuffle: zenith.ShuffleNone})
	var recs []arrow.RecordBatch
	for {
		var rec arrow.RecordBatch
		var err error
		if len(recs)%2 == 0 {
			rec, err = zenitharrow.Next(l)
		} else {
			var b *zenith.Batch
			if b, err = l.Next(); err == nil {
				rec, err = zenitharrow.Record(b)
				b.Close()
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	l.Close()
	runtime.GC() // nothing the records use may depend on the loader or the batches

	var ids []int64
	for _, rec := range recs {
		got, err := zenithtest.CheckRecord(rec)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, got...)
		rec.Release()
	}
	if len(recs) != 7 || len(ids) != zenithtest.Rows || !slices.IsSorted(ids) || ids[0] != 0 {
		t.Errorf("%d records, %d rows", len(recs), len(ids))
	}
	if _, err := zenitharrow.Next(l); !errors.Is(err, zenith.ErrClosed) {
		t.Errorf("Next on a closed loader: %v", err)
	}
}

// The loader's stream as an arrow-go RecordReader: the rest of the epoch, also after the
// loader is closed.
func TestReader(t *testing.T) {
	for _, name := range []string{"basic.arrow", "parquet/basic.gzip.parquet", "shards"} {
		t.Run(name, func(t *testing.T) {
			l := open(t, name, zenith.Options{BatchSize: 1000, Seed: 3})
			first, err := zenitharrow.Next(l) // taken before the stream: not in it
			if err != nil {
				t.Fatal(err)
			}
			ids, err := zenithtest.CheckRecord(first)
			first.Release()
			if err != nil {
				t.Fatal(err)
			}
			rdr, err := zenitharrow.NewReader(l)
			if err != nil {
				t.Fatal(err)
			}
			defer rdr.Release()
			l.Close()
			if want, _ := zenitharrow.Schema(open(t, name, zenith.Options{})); !rdr.Schema().Equal(want) {
				t.Errorf("reader schema %v", rdr.Schema())
			}
			batches := 1
			for rdr.Next() {
				got, err := zenithtest.CheckRecord(rdr.RecordBatch())
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, got...)
				batches++
			}
			if err := rdr.Err(); err != nil {
				t.Fatal(err)
			}
			if batches != 10 {
				t.Errorf("%d batches, want 10", batches)
			}
			if err := zenithtest.CheckPermutation(ids, zenithtest.Rows); err != nil {
				t.Error(err)
			}
		})
	}
}

// A stream over a corrupt row group reports the library's error through the reader.
func TestReaderError(t *testing.T) {
	l := open(t, "corrupt.parquet", zenith.Options{Shuffle: zenith.ShuffleNone})
	rdr, err := zenitharrow.NewReader(l)
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Release()
	for rdr.Next() {
	}
	if rdr.Err() == nil {
		t.Error("no error reading a corrupt row group")
	} else {
		t.Logf("reader error: %v", rdr.Err())
	}
}

func TestClosedBatch(t *testing.T) {
	l := open(t, "basic.arrow", zenith.Options{})
	b, err := l.Next()
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	if _, err := zenitharrow.Record(b); !errors.Is(err, zenith.ErrClosed) {
		t.Errorf("Record of a closed batch: %v", err)
	}
	l.Close()
	if _, err := zenitharrow.Schema(l); !errors.Is(err, zenith.ErrClosed) {
		t.Errorf("Schema of a closed loader: %v", err)
	}
	if _, err := zenitharrow.NewReader(l); !errors.Is(err, zenith.ErrClosed) {
		t.Errorf("NewReader of a closed loader: %v", err)
	}
}
