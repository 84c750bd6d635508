// Android Gradle plugin 9: Kotlin is built in, so no Kotlin Gradle plugin is applied here or in the modules.
plugins {
    id("com.android.application") version "9.4.0" apply false
    id("com.android.library") version "9.4.0" apply false
}
