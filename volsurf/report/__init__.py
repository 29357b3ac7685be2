"""volsurf.report"""
