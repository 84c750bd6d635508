// Compile-only stub for tests: mirrors the public signature of org.tensorflow.lite.gpu.CompatibilityList, LiteRT 1.4 (com.google.ai.edge.litert:litert-gpu).
package org.tensorflow.lite.gpu;

import java.io.Closeable;

public class CompatibilityList implements Closeable {
    public CompatibilityList() {}
    public boolean isDelegateSupportedOnThisDevice() { return false; }
    public GpuDelegateFactory.Options getBestOptionsForThisDevice() { return new GpuDelegateFactory.Options(); }
    public void close() {}
}
