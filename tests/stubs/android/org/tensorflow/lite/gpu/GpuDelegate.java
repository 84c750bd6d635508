// Compile-only stub for tests: mirrors the public signature of org.tensorflow.lite.gpu.GpuDelegate, LiteRT 1.4 (com.google.ai.edge.litert:litert-gpu).
package org.tensorflow.lite.gpu;

import org.tensorflow.lite.Delegate;

public class GpuDelegate implements Delegate {
    public GpuDelegate(GpuDelegateFactory.Options options) {}
    public GpuDelegate() {}
    public long getNativeHandle() { return 0; }
    public void close() {}
}
