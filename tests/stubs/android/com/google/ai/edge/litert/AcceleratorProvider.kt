// Compile-only stub for tests: mirrors the public Kotlin API of com.google.ai.edge.litert (NpuCompatibilityChecker, NpuAcceleratorProvider, BuiltinNpuAcceleratorProvider), LiteRT 2.1 (com.google.ai.edge.litert:litert:2.1.5), checked against github.com/google-ai-edge/LiteRT tag v2.1.5, litert/kotlin/src/main/kotlin/com/google/ai/edge/litert/AcceleratorProvider.kt. Bodies throw.
package com.google.ai.edge.litert

import android.content.Context

interface NpuCompatibilityChecker {
    fun isDeviceSupported(): Boolean

    companion object {
        val Qualcomm: NpuCompatibilityChecker = throw UnsupportedOperationException("stub")
        val Mediatek: NpuCompatibilityChecker = throw UnsupportedOperationException("stub")
        val GoogleTensor: NpuCompatibilityChecker = throw UnsupportedOperationException("stub")
        val Default: NpuCompatibilityChecker = throw UnsupportedOperationException("stub")
    }
}

interface NpuAcceleratorProvider {
    fun isDeviceSupported(): Boolean

    fun isLibraryReady(): Boolean

    suspend fun downloadLibrary()

    fun getLibraryDir(): String
}

class BuiltinNpuAcceleratorProvider
@JvmOverloads
constructor(
    private val context: Context,
    private val npuCompatibilityChecker: NpuCompatibilityChecker = NpuCompatibilityChecker.Default,
) : NpuAcceleratorProvider {
    override fun isDeviceSupported(): Boolean = throw UnsupportedOperationException("stub")

    override fun isLibraryReady() = true

    override suspend fun downloadLibrary() {}

    override fun getLibraryDir(): String = throw UnsupportedOperationException("stub")
}
