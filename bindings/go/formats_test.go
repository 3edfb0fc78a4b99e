package zenith_test

import (
	"errors"
	"io"
	"strings"
	"testing"

	zenith "github.com/zenith-data/libzenith/bindings/go"
	"github.com/zenith-data/libzenith/bindings/go/internal/zenithtest"
)

// countRows reads one epoch and returns its rows.
func countRows(t *testing.T, l *zenith.Loader) int {
	t.Helper()
	rows := 0
	for {
		b, err := l.Next()
		if errors.Is(err, io.EOF) {
			return rows
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		rows += b.NumRows()
		b.Close()
	}
}

func TestFormatsCompressedCSVJSONLinesAndOptions(t *testing.T) {
	for _, name := range []string{"formats/basic.csv.gz", "formats/basic.tsv.gz", "formats/basic.jsonl.gz", "formats/basic.ndjson.zst"} {
		l := open(t, name, zenith.Options{BatchSize: 1000})
		if got := countRows(t, l); got != 10000 {
			t.Errorf("%s: %d rows, want 10000", name, got)
		}
	}
	l := open(t, "formats/pipes.csv", zenith.Options{BatchSize: 1000, CSVDelimiter: '|'})
	if got := countRows(t, l); got != 10000 {
		t.Errorf("pipes.csv: %d rows", got)
	}
	// basic.csv's schema names the columns of a file without header.
	schema, err := open(t, "basic.csv", zenith.Options{}).Schema()
	if err != nil {
		t.Fatal(err)
	}
	defer schema.Release()
	l = open(t, "formats/noheader.csv", zenith.Options{BatchSize: 1000, CSVNoHeader: true, Schema: schema})
	if got := countRows(t, l); got != 10000 {
		t.Errorf("noheader.csv: %d rows", got)
	}
}

func TestFormatsPathListAndUnsupportedScheme(t *testing.T) {
	paths := []string{zenithtest.Path(t, "webdataset/shard-000001.tar"), zenithtest.Path(t, "webdataset/shard-000000.tar")}
	l, err := zenith.OpenPaths(paths, zenith.Options{BatchSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got := countRows(t, l); got != 157 {
		t.Errorf("two tar shards: %d rows, want 157", got)
	}
	_, err = zenith.Open("hdfs://namenode/train/", zenith.Options{})
	if !errors.Is(err, zenith.ErrUnsupported) || !strings.Contains(err.Error(), `"hdfs"`) {
		t.Errorf("hdfs:// gives %v", err)
	}
	if _, err := zenith.OpenPaths(nil, zenith.Options{}); !errors.Is(err, zenith.ErrNotFound) {
		t.Errorf("no paths gives %v", err)
	}
}
