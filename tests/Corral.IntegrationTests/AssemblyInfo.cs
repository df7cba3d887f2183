// The tests start real masters and workers and send real signals; run them one at a time so that
// timing expectations hold on a 2-core machine.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

// Real signals, /proc and corral's Linux-only OS layer: these tests run on Linux only.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
