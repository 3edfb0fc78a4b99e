package zenith

// Finalized returns how many loaders and batches their finalizers have freed so far.
func Finalized() (loaders, batches int64) {
	return finalizedLoaders.Load(), finalizedBatches.Load()
}
