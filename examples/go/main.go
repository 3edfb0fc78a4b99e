// Command stream_batches streams one epoch of a dataset through libzenith from Go: shuffled,
// built by worker threads, converted to arrow-go records without copying.
//
//	make install PREFIX=$HOME/.local
//	export PKG_CONFIG_PATH=$HOME/.local/lib/pkgconfig CGO_LDFLAGS="-Wl,-rpath,$HOME/.local/lib"
//	go run . data/ 1024          # path (file, directory of shards or glob), batch size
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	zenith "github.com/zenith-data/libzenith/bindings/go"
	"github.com/zenith-data/libzenith/bindings/go/zenitharrow"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: stream_batches <path> [batch_size]")
		os.Exit(2)
	}
	opts := zenith.Options{Shuffle: zenith.ShuffleGlobal, Seed: 0, NumWorkers: zenith.IntPtr(2)}
	if len(os.Args) > 2 {
		n, err := strconv.Atoi(os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, "batch size:", err)
			os.Exit(2)
		}
		opts.BatchSize = n
	}
	if err := run(os.Args[1], opts); err != nil {
		fmt.Fprintln(os.Stderr, err)
		var zerr *zenith.Error
		if errors.As(err, &zerr) {
			fmt.Fprintf(os.Stderr, "(status %d: %s)\n", zerr.Code, zerr.Code.String())
		}
		os.Exit(1)
	}
}

func run(path string, opts zenith.Options) error {
	loader, err := zenith.Open(path, opts)
	if errors.Is(err, zenith.ErrNotFound) {
		return fmt.Errorf("no dataset at %s: %w", path, err)
	} else if err != nil {
		return err
	}
	defer loader.Close()
	fmt.Printf("libzenith %s: %s, %d batches per epoch\n", zenith.Version(), path, loader.NumBatches())

	rows := 0
	for {
		batch, err := loader.Next()
		if err == io.EOF { // the end of the epoch; loader.SetEpoch(1) starts the next
			break
		}
		if err != nil {
			return err
		}
		rec, err := zenitharrow.Record(batch) // shares the batch's buffers; outlives it
		batch.Close()
		if err != nil {
			return err
		}
		if rows == 0 { // print the first rows of the first batch
			for r := 0; r < 3 && r < int(rec.NumRows()); r++ {
				fmt.Printf("  row %d:", r)
				for c, field := range rec.Schema().Fields() {
					fmt.Printf(" %s=%s", field.Name, rec.Column(c).ValueStr(r))
				}
				fmt.Println()
			}
		}
		rows += int(rec.NumRows())
		rec.Release()
	}

	st, err := loader.Stats()
	if err != nil {
		return err
	}
	fmt.Printf("%d rows in %d batches (shuffle %v, %d workers), first batch after %v, waited %v\n",
		rows, st.Batches, st.ShuffleMode, st.NumWorkers, st.TimeToFirstBatch, st.ConsumerWait)
	return nil
}
