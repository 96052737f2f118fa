# cmake -DROOT=<source dir> -P CheckLayering.cmake     (ctest: layering)
# The layers' include rules, checked on every quoted #include of ROOT's compiler/, support/
# and codegen/ (docs/ARCHITECTURE.md, "Layers"):
#   compiler/  a leaf: only compiler/ (and, in Parser.cpp, the generated ANTLR parser);
#   support/   only support/ (it sits below codegen/ and runtime/, and beside compiler/);
#   codegen/   codegen/, compiler/, support/ and the skeleton's own headers: never runtime/.
# Fails naming each file, line and include that breaks a rule.
set(violations "")
set(checked 0)

function(check_layer dir allowed_regex rule)
  file(GLOB_RECURSE files RELATIVE ${ROOT} ${ROOT}/${dir}/*.h ${ROOT}/${dir}/*.cpp ${ROOT}/${dir}/*.cuh)
  foreach(f ${files})
    math(EXPR checked "${checked} + 1")
    file(READ ${ROOT}/${f} text)
    string(REGEX MATCHALL "#[ \t]*include[ \t]*\"[^\"]*\"" includes "${text}")
    foreach(inc IN LISTS includes)
      string(REGEX REPLACE "^#[ \t]*include[ \t]*\"([^\"]*)\"$" "\\1" target "${inc}")
      if(NOT target MATCHES "${allowed_regex}")
        # The line number, for the message: newlines before the include.
        string(FIND "${text}" "${inc}" at)
        string(SUBSTRING "${text}" 0 ${at} before)
        string(REGEX MATCHALL "\n" newlines "${before}")
        list(LENGTH newlines line)
        math(EXPR line "${line} + 1")
        string(APPEND violations "${f}:${line}: includes \"${target}\": ${rule}\n")
      endif()
    endforeach()
  endforeach()
  set(violations "${violations}" PARENT_SCOPE)
  set(checked ${checked} PARENT_SCOPE)
endfunction()

check_layer(compiler "^(compiler/.*|AttnLexer\\.h|AttnParser\\.h|antlr4-runtime\\.h)$"
            "compiler/ is a leaf and includes only compiler/")
check_layer(support "^support/.*$" "support/ includes only support/")
check_layer(codegen "^(codegen/.*|compiler/.*|support/.*|[A-Za-z0-9_]+\\.cuh)$"
            "codegen/ includes codegen/, compiler/ and support/, never runtime/")

if(checked EQUAL 0)
  message(FATAL_ERROR "layering: no source files under ${ROOT}/compiler, support, codegen")
endif()
if(NOT violations STREQUAL "")
  # Printed unwrapped (FATAL_ERROR's text is re-flowed), one violation a line.
  message(NOTICE "layering: includes that break the layers (docs/ARCHITECTURE.md):\n${violations}")
  message(FATAL_ERROR "layering: the include rules are broken (above)")
endif()
message(STATUS "layering: ${checked} files follow the include rules")
